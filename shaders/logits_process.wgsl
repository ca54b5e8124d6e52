// Per sampled row the host lists (ProcRow), before the sampler: first, on the raw logits, the
// log-softmax normaliser and the top-N log probabilities (what the OpenAI APIs report as
// logprobs: the model's distribution, before any bias or penalty); then the row's logit bias and
// repetition / presence / frequency penalties, applied in place to the tokens the host listed (an
// Entry each, its raw logit kept for logprobs_pick); then min-p: tokens whose probability at the
// row's temperature is below min_p times the most likely one's become LOWEST, which the sampler's
// softmax weighs 0 (exp underflows). One workgroup per listed row.
// defines: WG (power of two), TOPN (most top logprobs); flags: SUBGROUPS.
#include lib/reduce

struct Params {
  vocab: u32,
}

#include lib/logits_rows

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> proc_rows: array<ProcRow>;
@group(0) @binding(3) var<storage, read_write> entries: array<Entry>;
@group(0) @binding(4) var<storage, read_write> logits: array<f32>;
@group(0) @binding(5) var<storage, read_write> lp: array<u32>;

const REDUCE_N: u32 = 1u;

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
#if SUBGROUPS
  @builtin(subgroup_invocation_id) sgl: u32,
  @builtin(subgroup_size) sgs: u32,
#endif
) {
#if SUBGROUPS
  sg_lane = sgl;
  sg_size = sgs;
#endif
  let pr = proc_rows[wid.x];
  if (pr.given == NO_GIVEN && pr.sample >= step.samples) {
    return;
  }
  let base = pr.row * p.vocab;
  let out = wid.x * LP_WORDS;

  if (pr.top != NO_LOGPROBS) {
    // the most likely token, then the normaliser log(sum exp(l - max)) + max
    var bv = LOWEST;
    var bi = NONE;
    for (var i = lid; i < p.vocab; i += WG) {
      let v = logits[base + i];
      if (better(v, i, bv, bi)) {
        bv = v;
        bi = i;
      }
    }
    let best = wg_argmax(bv, bi, lid, p.vocab);
    var s = 0.0;
    for (var i = lid; i < p.vocab; i += WG) {
      s += exp(logits[base + i] - best.v);
    }
    let lse = best.v + log(wg_sum(s, lid, p.vocab));
    if (lid == 0u) {
      lp[out] = bitcast<u32>(lse);
      lp[out + 3u] = min(pr.top, TOPN);
    }
    // the top N by rank: each round the best candidate ranked after the previous pick
    var prev = best;
    let n = min(pr.top, TOPN);
    for (var r = 0u; r < opaque(TOPN, p.vocab); r++) {
      if (r >= n) {
        break;
      }
      if (lid == 0u) {
        lp[out + 4u + 2u * r] = prev.i;
        lp[out + 5u + 2u * r] = bitcast<u32>(prev.v - lse);
      }
      var cv = LOWEST;
      var ci = NONE;
      for (var i = lid; i < p.vocab; i += WG) {
        let v = logits[base + i];
        if (better(prev.v, prev.i, v, i) && better(v, i, cv, ci)) {
          cv = v;
          ci = i;
        }
      }
      prev = wg_argmax(cv, ci, lid, p.vocab);
    }
  }
  storageBarrier();
  workgroupBarrier();

  // bias and penalties (distinct ids per row: no two threads touch one logit)
  for (var j = lid; j < pr.n; j += WG) {
    let e = entries[pr.off + j];
    let raw = logits[base + e.id];
    entries[pr.off + j].raw = raw;
    // repetition penalty as in CTRL / Hugging Face: a seen token's logit moves toward less likely
    logits[base + e.id] = select(raw * e.rep, raw / e.rep, raw > 0.0) + e.add;
  }
  storageBarrier();
  workgroupBarrier();

  if (pr.min_p > 0.0 && pr.temp > 0.0) {
    var m = LOWEST;
    for (var i = lid; i < p.vocab; i += WG) {
      m = max(m, logits[base + i]);
    }
    let top = wg_argmax(m, lid, lid, p.vocab).v;
    // p_i / p_max = exp((l_i - l_max) / T) >= min_p
    let floor_ = top + pr.temp * log(pr.min_p);
    for (var i = lid; i < p.vocab; i += WG) {
      if (logits[base + i] < floor_) {
        logits[base + i] = LOWEST;
      }
    }
  }
}
