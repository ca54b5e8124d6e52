// What one step of the batched engine holds: T tokens from any number of sequences, R rows that
// need logits and S rows that are sampled. The counts live in the Step uniform (one writeBuffer per
// step); each token's id source, position and sequence slot live in the TokInfo storage array, so
// every kernel works on tokens of different sequences at different positions in one dispatch.
struct Step {
  tokens: u32,   // T: tokens in this forward
  rows: u32,     // R: rows whose logits are computed (the unembedding's rows)
  samples: u32,  // S: rows the sampler draws a token for
  _pad: u32,
}

// The id of token t: a literal id, or (SAMPLED_ID | slot) for "the id last sampled for sequence
// slot", so a decode step never needs the previous id on the host.
const SAMPLED_ID: u32 = 0x80000000u;

struct TokInfo {
  id: u32,   // literal id, or SAMPLED_ID | slot
  pos: u32,  // absolute position in its sequence
  seq: u32,  // sequence slot: row of the KV page tables
  _pad: u32,
}

// x, hidden from the compiler: `nonzero` is a uniform the host never sets to 0. Loops whose trip
// count is a constant get unrolled by lavapipe's LLVM, and when they hold barriers (each one a
// suspension point of its coroutines) or nest, compiling takes minutes; bounding them by
// opaque(CONST, p.some_field) keeps them loops, with the same trip count.
fn opaque(x: u32, nonzero: u32) -> u32 {
  return select(x, 0u, nonzero == 0u);
}
