// Per-step values, written once per step with queue.writeBuffer before the step's single submit.
struct Step {
  tokens: u32,       // tokens in this forward: the prefill chunk length, or 1 when decoding
  pos0: u32,         // absolute position of token 0 of the chunk
  out_row0: u32,     // first chunk row whose logits are computed
  out_rows: u32,     // number of logits rows
  seed: u32,         // sampling seed
  counter: u32,      // index of the token being sampled (random stream position)
  temperature: f32,  // <= 0: greedy
  top_p: f32,
  top_k: u32,        // 0: off
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}
