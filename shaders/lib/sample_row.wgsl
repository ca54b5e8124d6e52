// A sampled row's settings and its logits as the samplers see them (sample_candidates.wgsl and
// sample.wgsl). Needs the bindings `logits` and `mask`, `p.mask_words`, and the private `sr` set to
// the row's settings.
#include lib/order

struct SampleRow {
  row: u32,          // logits row
  slot: u32,         // sequence slot
  seed: u32,
  counter: u32,      // index of the token being sampled (random stream position)
  temperature: f32,  // <= 0: greedy
  top_p: f32,
  top_k: u32,        // 0: off
  masked: u32,
}

// The value of a masked-out token: below every logit, above LOWEST.
const NEG = -3.4e38;

// The logit of token i in row `row` (its first element), or NEG when the mask rules it out.
fn lg(row: u32, i: u32) -> f32 {
  let v = logits[row + i];
  if (sr.masked != 0u && ((mask[sr.slot * p.mask_words + (i >> 5u)] >> (i & 31u)) & 1u) == 0u) {
    return NEG;
  }
  return v;
}
