// Picks the next token of each sampled row on the GPU, so decoding reads back only the ids.
// One workgroup per sample row, each with its own settings (SampleRow): greedy (temperature <= 0):
// argmax, lowest index on ties; otherwise softmax(logits / temperature) restricted to the top_k
// largest and then to the smallest top set holding top_p of the mass, drawn by Gumbel-max over
// that kept set: the largest logit / T + noise(seed, counter, id) (lib/gumbel, the unembedding's
// key), so the same seed replays the same tokens and a row without a cut draws what the
// unembedding's epilogue draws.
// Constrained decoding: a row with `masked` 1 may only choose tokens whose bit is set in its
// sequence slot's mask row (bit i of word i >> 5); the others count as -inf everywhere. An
// unmasked row never reads the mask.
// The id goes to sampled[r] (read back) and last_ids[slot] (the next step's embedding reads it).
//
// A cut row reads its logits in a few plain passes, not one per search step: each thread's best
// logit bounds the cut from below (the k-th best of them for top-k; for top-p the first whose
// prefix of thread bests holds top_p of the mass), the tokens at or above that bound go to a list
// in workgroup memory (in thread order, so every run sums them alike), and the exact thresholds
// (lib/sample_search) and the draw are taken over the list. Only when the bound lets more than
// LIST tokens through (a nucleus of many flat logits) does the search run over the whole row.
// With ARGMAX an unmasked greedy row and a Gumbel-max row copy the unembedding's pick
// (unembed.wgsl) without a pass; for an unmasked top-p row (lib/sample_settings gumbel_nucleus)
// that pick is the draw when it lies in the nucleus: one pass sums the mass above its logit.
// defines: WG (power of two), LIST (list capacity, a multiple of WG).
#include lib/step
#include lib/gumbel

struct Params {
  vocab: u32,
  mask_words: u32,  // u32 words per mask row: ceil(vocab / 32)
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> samples: array<SampleRow>;
@group(0) @binding(3) var<storage, read> logits: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read_write> sampled: array<u32>;
@group(0) @binding(6) var<storage, read_write> last_ids: array<u32>;
#if ARGMAX
// the unembedding's pick per logits row: (~index, orderable value)
@group(0) @binding(7) var<storage, read> argmax: array<vec2<u32>>;
#endif

// The threshold search splits its key range in SPLITS per pass (a pass reads every element).
const SPLITS: u32 = 8u;
const REDUCE_N: u32 = SPLITS;
#include lib/reduce

var<workgroup> wg_range: vec2<u32>;
var<workgroup> wg_count: u32;
var<workgroup> wg_bound: f32;
// each thread's best logit (pass 1)
var<workgroup> tbest: array<f32, WG>;
// its mass, relative to the reference (top-p rows)
var<workgroup> tbest_w: array<f32, WG>;
// the tokens at or above the bound: logit and id
var<workgroup> list_v: array<f32, LIST>;
var<workgroup> list_i: array<u32, LIST>;
#include lib/sample_row

// The element sources of the threshold search: the list, or the whole row.
const LISTED: u32 = 0u;
const FULL: u32 = 1u;
var<private> listed: u32;

fn elems(src: u32) -> u32 {
  return select(listed, p.vocab, src == FULL);
}

fn elem(src: u32, j: u32) -> f32 {
  if (src == FULL) {
    return lg(sr.row * p.vocab, j);
  }
  return list_v[j];
}

#include lib/sample_search

// The Gumbel-max draw over the source's elements at or above threshold key lo.
fn draw(src: u32, lo: u32, inv_t: f32, stream: u32, lid: u32) -> u32 {
  var bk = LOWEST;
  var bi = NONE;
  for (var j = lid; j < elems(src); j += WG) {
    let v = elem(src, j);
    if (key(v) >= lo) {
      let id = select(list_i[min(j, LIST - 1u)], j, src == FULL);
      let k = gumbel_key(v, inv_t, stream, id);
      if (better(k, id, bk, bi)) {
        bk = k;
        bi = id;
      }
    }
  }
  return wg_argmax(bk, bi, lid, p.vocab).i;
}

// The top-k, then top-p threshold over source src (the largest key whose kept count, or mass,
// still reaches what the row asks), from lo; `total` the top-p cut's whole (ignored with top_k).
// m the row's largest logit, r the exp reference.
fn thresholds(src: u32, rc: SampleRow, lo0: u32, m: f32, r: f32, inv_t: f32, total0: f32, lid: u32) -> u32 {
  var lo = lo0;
  var total = total0;
  if (rc.top_k > 0u && rc.top_k < p.vocab) {
    lo = search(src, lo, key(m), f32(rc.top_k), true, r, inv_t, lid);
    total = kept_sum(src, lo, false, r, inv_t, lid);
  }
  if (rc.top_p < 1.0) {
    lo = search(src, lo, key(m), rc.top_p * total, false, r, inv_t, lid);
  }
  return lo;
}

// thresholds() over a list of at most WG tokens, a token a thread: a threshold is the value of
// one of them, so each thread tests its own instead of searching. The top-k cut is the value
// ranked k-th (ties by list position); the top-p cut the largest kept value whose mass at or
// above it reaches top_p of the total: the same keys the search finds, in two passes over the list.
fn list_thresholds(rc: SampleRow, lo0: u32, r: f32, inv_t: f32, total0: f32, lid: u32) -> u32 {
  let mine = lid < listed;
  let v = select(NEG, list_v[min(lid, LIST - 1u)], mine);
  var rank = 0u;
  var mass = 0.0;
  for (var j = 0u; j < listed; j++) {
    let o = list_v[j];
    if (o > v || (o == v && j < lid)) {
      rank++;
    }
    if (o >= v) {
      mass += exp((o - r) * inv_t);
    }
  }
  var lo = lo0;
  var total = total0;
  if (rc.top_k > 0u && rc.top_k < p.vocab) {
    // fewer listed than k: all kept (the bound let every allowed token through)
    let kth = wg_argmax(select(NEG, v, mine && rank + 1u >= rc.top_k), lid, lid, p.vocab).v;
    if (lid == 0u) {
      wg_range.x = select(lo0, max(key(kth), lo0), listed >= rc.top_k);
    }
    lo = workgroupUniformLoad(&wg_range).x;
    total = wg_sum(select(0.0, exp((v - r) * inv_t), mine && key(v) >= lo), lid, p.vocab);
  }
  if (rc.top_p < 1.0) {
    // the mass at or above v within the top-k set is `mass` when v is in it
    let cut = wg_argmax(select(NEG, v, mine && key(v) >= lo && mass >= rc.top_p * total), lid, lid, p.vocab).v;
    if (lid == 0u) {
      wg_range.x = max(key(cut), lo);
    }
    lo = workgroupUniformLoad(&wg_range).x;
  }
  return lo;
}

fn finish(r_idx: u32, slot: u32, id: u32, lid: u32) {
  if (lid == 0u) {
    sampled[r_idx] = id;
    last_ids[slot] = id;
  }
}

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
#if SUBGROUPS
  @builtin(subgroup_invocation_id) sgl: u32,
  @builtin(subgroup_size) sgs: u32,
#endif
) {
#if SUBGROUPS
  sg_lane = sgl;
  sg_size = sgs;
#endif
  let r_idx = wid.x + wid.y * nwg.x;
  if (r_idx >= step.samples) {
    return;
  }
  let rc = load_sample_row(r_idx, lid);
  let row = rc.row * p.vocab;
#if ARGMAX
  // greedy and unmasked, or Gumbel-max: the unembedding already picked it
  if (unembed_settles(rc, p.vocab)) {
    finish(r_idx, rc.slot, ~argmax[rc.row].x, lid);
    return;
  }
  let nucleus = gumbel_nucleus(rc, p.vocab);
  // a top-p row: the logit of the unembedding's Gumbel-max pick is the masses' reference
  var g = NONE;
  if (nucleus) {
    g = ~argmax[rc.row].x;
  }
#else
  let nucleus = false;
  let g = NONE;
#endif
  let inv_t = select(1.0, 1.0 / rc.temperature, rc.temperature > 0.0);
  let stream = gumbel_stream(rc.seed, rc.counter);
  let cut = rc.temperature > 0.0 && (rc.top_p < 1.0 || (rc.top_k > 0u && rc.top_k < p.vocab));
  if (rc.temperature > 0.0 && !cut) {
    // temperature over every (allowed) token: the Gumbel-max over the row
    finish(r_idx, rc.slot, draw(FULL, key(NEG) + 1u, inv_t, stream, lid), lid);
    return;
  }

  // pass 1: each thread's best (lowest id on ties), and for a top-p row with the unembedding's
  // pick its masses, all and strictly above the pick's logit (keys bound (max - logit) / T by
  // the noise's range, ~26: no overflow)
  var vg = 0.0;
  if (nucleus) {
    vg = logits[row + g];
  }
  var bv = NEG;
  var bi = NONE;
  var all = 0.0;
  var above = 0.0;
  for (var i = lid; i < p.vocab; i += WG) {
    let v = lg(row, i);
    if (better(v, i, bv, bi)) {
      bv = v;
      bi = i;
    }
    if (nucleus) {
      let e = exp((v - vg) * inv_t);
      all += e;
      above += select(0.0, e, v > vg);
    }
  }
  tbest[lid] = bv;
  let top = wg_argmax(bv, bi, lid, p.vocab);
  if (!cut) {
    finish(r_idx, rc.slot, top.i, lid);
    return;
  }
  if (lid == 0u) {
    wg_bound = top.v;
  }
  // the row's largest logit, as a uniform value (it bounds the searches)
  let m = workgroupUniformLoad(&wg_bound);
  // the masses' reference: the pick's logit, or the row's largest
  var r = m;
  var total = 0.0;
  if (nucleus) {
    r = vg;
    total = wg_sum(all, lid, p.vocab);
    if (wg_sum(above, lid, p.vocab) < rc.top_p * total) {
      // the pick is kept: it is the largest key over the nucleus
      finish(r_idx, rc.slot, g, lid);
      return;
    }
  } else if (rc.top_k == 0u || rc.top_k >= p.vocab) {
    var z = 0.0;
    for (var i = lid; i < p.vocab; i += WG) {
      z += exp((lg(row, i) - m) * inv_t);
    }
    total = wg_sum(z, lid, p.vocab);
  }

  // the bound: below every kept token. This thread's best ranks `rank` among the threads' (ties
  // by thread); the threads at or above it hold that many distinct tokens and `held` mass, so
  // when those reach top_k, or top_p of the total with a margin for rounding, the cut is at or
  // above its value: the bound is the largest such best. A masked-out best never bounds.
  let topk = rc.top_k > 0u && rc.top_k < p.vocab;
  if (!topk) {
    tbest_w[lid] = exp((bv - r) * inv_t);
  }
  workgroupBarrier();
  var rank = 0u;
  var held = 0.0;
  for (var j = 0u; j < WG; j++) {
    let o = tbest[j];
    if (o > bv || (o == bv && j <= lid)) {
      rank++;
      if (!topk) {
        held += tbest_w[j];
      }
    }
  }
  let bounds = bv > NEG && select(held >= rc.top_p * total * 1.001, rank >= rc.top_k, topk);
  let bmax = wg_argmax(select(NEG, bv, bounds), lid, lid, p.vocab).v;
  if (lid == 0u) {
    wg_bound = bmax;
  }
  let bound = workgroupUniformLoad(&wg_bound);
  let lo0 = key(NEG) + 1u;
  let kb = max(key(bound), lo0);

  // the tokens at or above the bound, in thread order: counts, offsets, then the list
  var mine = 0u;
  for (var i = lid; i < p.vocab; i += WG) {
    mine += select(0u, 1u, key(lg(row, i)) >= kb);
  }
  let sc = wg_scan(f32(mine), lid, p.vocab);
  if (lid == WG - 1u) {
    wg_count = u32(sc.total);
  }
  let n = workgroupUniformLoad(&wg_count);
  var lo = lo0;
  var src = FULL;
  if (n <= LIST) {
    var at = u32(sc.start);
    for (var i = lid; i < p.vocab && at < LIST; i += WG) {
      let v = lg(row, i);
      if (key(v) >= kb) {
        list_v[at] = v;
        list_i[at] = i;
        at++;
      }
    }
    workgroupBarrier();
    listed = n;
    if (n <= WG) {
      lo = list_thresholds(rc, lo0, r, inv_t, total, lid);
    } else {
      lo = thresholds(LISTED, rc, lo0, m, r, inv_t, total, lid);
    }
    // the list holds every kept token when the cut is at or above the bound
    if (lo >= kb) {
      src = LISTED;
    }
  }
  if (src == FULL) {
    lo = thresholds(FULL, rc, lo0, m, r, inv_t, total, lid);
  }
  finish(r_idx, rc.slot, draw(src, lo, inv_t, stream, lid), lid);
}
