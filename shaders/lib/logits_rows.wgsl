// What logits_process.wgsl (before the sampler) and logprobs_pick.wgsl (after it) share: the
// host's row list and bias/penalty entries (ops/context.ts PROC_ROW_WORDS, PROC_ENTRY_WORDS) and
// the layout of a logprobs record. Needs const TOPN (most top logprobs).

struct ProcRow {
  sample: u32,  // index among the step's sample rows (sampled[], SampleRow)
  row: u32,     // logits row
  n: u32,       // entries
  off: u32,     // first entry
  top: u32,     // top logprobs wanted; NO_LOGPROBS for none
  min_p: f32,   // 0: off
  temp: f32,    // the row's temperature (min-p compares probabilities at it)
  given: u32,   // a prompt row: the token whose logprob is wanted (the next prompt token); NO_GIVEN: the sampled one
}

struct Entry {
  id: u32,
  add: f32,  // logit bias minus the presence and frequency penalties
  rep: f32,  // repetition penalty (1: none)
  raw: f32,  // written by logits_process: the raw logit
}

const NO_LOGPROBS: u32 = 0xFFFFFFFFu;
const NO_GIVEN: u32 = 0xFFFFFFFFu;
// Words of one logprobs record: normaliser, chosen id, chosen logprob, top count, TOPN (id, logprob).
const LP_WORDS: u32 = 4u + 2u * TOPN;
