// Gumbel-max sampling: argmax_i (l_i / T + g_i), with g_i = -log(-log(u_i)) independent standard
// Gumbel noise, draws i with probability softmax(l / T)_i. u_i comes from a counter-based hash
// of (seed, counter, i), so a draw is a pure function of the logits and those three: any order of
// evaluation (workgroups, shards, slices) takes the same max.
#include lib/hash

// The draw's stream: one hash state per (seed, counter), shared by every token id of the row.
fn gumbel_stream(seed: u32, counter: u32) -> u32 {
  return hash(hash(seed ^ 0x2545f491u) ^ (counter * 0x9e3779b9u + 0x7f4a7c15u));
}

// -log(u) for token id, u = 1 - s strictly inside (0, 1), s = (h + 1/2) / 2^32 for a 32-bit hash
// h. The winners of a max have large noise, i.e. u near 1 and -log(u) near 0: computing it from
// s (a log1p series for small s) keeps 32 bits of resolution there, where f32's u itself has only
// 24 (which would cap the noise at 16.6, reached by ~1% of draws over 201,088 tokens).
fn gumbel_exp(stream: u32, id: u32) -> f32 {
  let h = hash(stream ^ hash(id * 0x85ebca6bu + 0xc2b2ae35u));
  // below 1: f32(h) rounds up to 2^32 for the largest h
  let s = min((f32(h) + 0.5) * 0x1p-32f, 0x1.fffffep-1f);
  if (s < 0.0625) {
    // -log1p(-s) = s + s^2/2 + s^3/3 + ...; the terms after s^7 add below 2^-31 relative
    return s * (1.0 + s * (0.5 + s * (0.33333334 + s * (0.25 + s * (0.2 + s * (0.16666667 + s * 0.14285715))))));
  }
  return -log(1.0 - s);
}

// The Gumbel-max key of token id with logit v: the largest key over the row is the draw.
fn gumbel_key(v: f32, inv_t: f32, stream: u32, id: u32) -> f32 {
  return v * inv_t - log(gumbel_exp(stream, id));
}
