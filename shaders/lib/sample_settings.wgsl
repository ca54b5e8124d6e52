// A sampled row's settings (written by src/engine/step-inputs.ts) and which draw they ask for.
// Read by the samplers (lib/sample_row) and by the unembedding, which draws some rows itself.

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

// Temperature sampling over the whole softmax (no top-p cut, no top-k below the vocabulary, no
// mask): drawn by Gumbel-max, argmax of logit / temperature + Gumbel noise (lib/gumbel), which
// needs only a max over the row. The same key wherever it is taken (the unembedding's epilogue,
// or the sampler's pass over the row), so a (seed, counter) draws the same token on every head variant.
fn gumbel_draw(rc: SampleRow, vocab: u32) -> bool {
  return rc.masked == 0u && rc.temperature > 0.0 && rc.top_p >= 1.0 && (rc.top_k == 0u || rc.top_k >= vocab);
}

// Top-p over an unmasked row with no top-k below the vocabulary: the unembedding takes the row's
// Gumbel-max key over the whole softmax as for gumbel_draw. The sampler draws the Gumbel-max over
// the nucleus, which is that pick whenever the pick lies in the nucleus (the mass strictly above
// its logit is below top_p of the total): then one pass over the row decides.
fn gumbel_nucleus(rc: SampleRow, vocab: u32) -> bool {
  return rc.masked == 0u && rc.temperature > 0.0 && rc.top_p < 1.0 && (rc.top_k == 0u || rc.top_k >= vocab);
}

// The unembedding takes the row's Gumbel-max key (instead of the plain argmax).
fn unembed_keys(rc: SampleRow, vocab: u32) -> bool {
  return gumbel_draw(rc, vocab) || gumbel_nucleus(rc, vocab);
}

// With ARGMAX the unembedding's pick of the row's logits row is this row's token: greedy and
// unmasked, or a Gumbel-max draw. The engine gives every sample row its own logits row, which the
// unembedding needs for the second (its key uses this row's seed and counter).
fn unembed_settles(rc: SampleRow, vocab: u32) -> bool {
  return (rc.temperature <= 0.0 && rc.masked == 0u) || gumbel_draw(rc, vocab);
}
