// Picks the next token of each sampled row on the GPU, so decoding reads back only the ids.
// One workgroup per sample row, each with its own settings (SampleRow): greedy (temperature <= 0):
// argmax, lowest index on ties; otherwise softmax(logits / temperature) restricted to the top_k
// largest and then to the smallest top set holding top_p of the mass (thresholds found by
// a SPLITS-way search on order-preserving float bits), sampled with a counter-based random number
// (seed, counter): the same seed replays the same tokens.
// Constrained decoding: a row with `masked` 1 may only choose tokens whose bit is set in its
// sequence slot's mask row (bit i of word i >> 5); the others count as -inf in argmax, top-k, top-p
// and the draw. An unmasked row never reads the mask.
// The id goes to sampled[r] (read back) and last_ids[slot] (the next step's embedding reads it).
// Second pass of two: sample_candidates has spread the row over many workgroups, leaving per
// slice its max, its mass and its C best; this pass decides from those W·C candidates and reads
// the whole row (lib/sample_full_row) only when they cannot decide (a slice's C-th candidate
// still kept). Both run one algorithm (sample_from) over an element source. The draw
// walks the kept tokens in id order either way. A Gumbel-max row (temperature over the whole
// softmax, lib/sample_settings) takes the best of the slices' largest keys. With ARGMAX an
// unmasked greedy row and a Gumbel-max row take the unembedding's pick (unembed.wgsl, the same
// key) without a pass.
// defines: WG (power of two), C (candidates per slice).
#include lib/step
#include lib/hash

struct Params {
  vocab: u32,
  mask_words: u32,  // u32 words per mask row: ceil(vocab / 32)
  slices: u32,      // sample_candidates' slices per row
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> samples: array<SampleRow>;
@group(0) @binding(3) var<storage, read> logits: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read_write> sampled: array<u32>;
@group(0) @binding(6) var<storage, read_write> last_ids: array<u32>;
// sample_candidates' output: per (row, slice) C x (value bits, id), and (max, mass)
@group(0) @binding(7) var<storage, read> cand: array<vec2<u32>>;
@group(0) @binding(8) var<storage, read> stats: array<vec2<f32>>;
#if ARGMAX
// the unembedding's greedy pick per logits row: (~index, orderable value)
@group(0) @binding(9) var<storage, read> argmax: array<vec2<u32>>;
#endif

// The threshold search splits its key range in SPLITS per pass (a pass reads every element).
const SPLITS: u32 = 8u;
const REDUCE_N: u32 = SPLITS;
#include lib/reduce

var<workgroup> chosen: u32;
var<workgroup> wg_range: vec2<u32>;
var<workgroup> wg_best: Pick;
// The row's index among the step's sample rows (its candidates).
var<private> sr_idx: u32;
#include lib/sample_row
#include lib/sample_full_row

const NO_PICK: u32 = 0xFFFFFFFEu;

// The random number of this draw in [0, 1).
fn uniform01(rc: SampleRow) -> f32 {
  return f32(hash(hash(rc.seed) ^ (rc.counter * 0x9e3779b9u + 0x632be5abu)) >> 8u) * (1.0 / 16777216.0);
}

// Candidate j of this row: (value, id); id NONE for an empty one.
fn candidate(j: u32) -> vec2<u32> {
  return cand[sr_idx * p.slices * C + j];
}

fn cand_value(c: vec2<u32>) -> f32 {
  return select(NEG, bitcast<f32>(c.x), c.y != NONE);
}

// The element sources of sample_from: the candidates (segment w: slice w), or the whole row.
const CANDS: u32 = 0u;
const FULL: u32 = 1u;

fn elems(src: u32) -> u32 {
  return select(p.slices * C, p.vocab, src == FULL);
}

fn elem(src: u32, j: u32) -> f32 {
  if (src == FULL) {
    return lg(full_row_base(), j);
  }
  return cand_value(candidate(j));
}

// The kept mass of segment seg at threshold lo (slices: in candidate order).
fn seg_mass(src: u32, seg: u32, lo: u32, m: f32, inv_t: f32) -> f32 {
  if (src == FULL) {
    return full_seg_mass(seg, lo, m, inv_t);
  }
  var s = 0.0;
  if (seg < p.slices) {
    for (var j = 0u; j < opaque(C, p.vocab); j++) {
      let v = cand_value(candidate(seg * C + j));
      if (key(v) >= lo) {
        s += exp((v - m) * inv_t);
      }
    }
  }
  return s;
}

// The kept element of segment seg with the smallest id above `after` (NONE: the smallest), as
// (id, value bits); id NONE when there is none.
fn seg_next(src: u32, seg: u32, lo: u32, after: u32) -> vec2<u32> {
  if (src == FULL) {
    return full_seg_next(seg, lo, after);
  }
  var next = vec2<u32>(NONE, 0u);
  for (var j = 0u; j < opaque(C, p.vocab); j++) {
    let c = candidate(seg * C + j);
    let v = cand_value(c);
    if (key(v) >= lo && (after == NONE || c.y > after) && c.y < next.x) {
      next = vec2<u32>(c.y, bitcast<u32>(v));
    }
  }
  return next;
}

#include lib/sample_search

// The draw over the kept elements in id order: segments (threads, ascending id ranges) by a scan
// of their masses, then ids within the segment holding the goal. `best` when rounding puts the
// goal past every segment.
fn draw(src: u32, rc: SampleRow, lo: u32, m: f32, inv_t: f32, best: u32, lid: u32) -> u32 {
  let mine = seg_mass(src, lid, lo, m, inv_t);
  let sc = wg_scan(mine, lid, p.vocab);
  let goal = uniform01(rc) * sc.total;
  if (lid == 0u) {
    chosen = best;
  }
  workgroupBarrier();
  if (goal >= sc.start && goal < sc.end && mine > 0.0) {
    var acc = sc.start;
    var pick = NONE;
    loop {
      let next = seg_next(src, lid, lo, pick);
      if (next.x == NONE) {
        break;
      }
      pick = next.x;
      acc += exp((bitcast<f32>(next.y) - m) * inv_t);
      if (acc > goal) {
        break;
      }
    }
    if (pick != NONE) {
      chosen = pick;
    }
  }
  return workgroupUniformLoad(&chosen);
}

// Some slice's C-th candidate is kept at threshold lo: that slice may keep more than its candidates.
fn cands_cut_short(lo: u32, lid: u32) -> bool {
  var missing = 0.0;
  for (var w = lid; w < p.slices; w += WG) {
    missing += select(0.0, 1.0, key(cand_value(candidate(w * C + C - 1u))) >= lo);
  }
  return wg_sum(missing, lid, p.vocab) > 0.0;
}

// Sampling from source src: the top-k then the top-p threshold (search), the total mass the
// top-p cut is a share of (the top-k set's, or the whole row's from the slices' masses), and the
// draw. The candidates give NO_PICK when a slice's C-th candidate is still kept at the top-k or
// the final threshold (the kept set may reach past it, and its count or mass would come short):
// the whole row decides then. Below both, every kept element is a candidate, so the candidates
// decide a top_k above C too when the top_k largest spread over the slices. m and best are the
// row's largest logit and its lowest id, which the slices' first candidates give for either source.
fn sample_from(src: u32, rc: SampleRow, m: f32, best: u32, lid: u32) -> u32 {
  let inv_t = 1.0 / rc.temperature;
  // masked-out tokens and empty candidates (NEG) sit below every threshold
  var lo = select(0u, key(NEG) + 1u, rc.masked != 0u || src == CANDS);
  if (rc.top_k > 0u && (src == CANDS || rc.top_k < p.vocab)) {
    lo = search(src, lo, key(m), f32(rc.top_k), true, m, inv_t, lid);
    if (src == CANDS && cands_cut_short(lo, lid)) {
      return NO_PICK;
    }
  }
  var total = 0.0;
  if (src == CANDS && rc.top_k == 0u) {
    var z = 0.0;
    for (var w = lid; w < p.slices; w += WG) {
      let st = stats[sr_idx * p.slices + w];
      if (st.x > NEG) {
        z += st.y * exp((st.x - m) * inv_t);
      }
    }
    total = wg_sum(z, lid, p.vocab);
  } else {
    total = kept_sum(src, lo, false, m, inv_t, lid);
  }
  if (rc.top_p < 1.0) {
    lo = search(src, lo, key(m), rc.top_p * total, false, m, inv_t, lid);
  }
  if (src == CANDS && cands_cut_short(lo, lid)) {
    return NO_PICK;
  }
  return draw(src, rc, lo, m, inv_t, best, lid);
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
  sr_idx = r_idx;
#if ARGMAX
  // greedy and unmasked, or Gumbel-max: the unembedding already picked it
  if (unembed_settles(rc, p.vocab)) {
    if (lid == 0u) {
      let id = ~argmax[rc.row].x;
      sampled[r_idx] = id;
      last_ids[rc.slot] = id;
    }
    return;
  }
#endif
  // the row's best: the best of the slices' first candidates (lowest id on ties); for a
  // Gumbel-max row their largest keys, so the best is the draw
  var bv = NEG;
  var bi = NONE;
  for (var w = lid; w < p.slices; w += WG) {
    let c = candidate(w * C);
    let v = cand_value(c);
    if (better(v, c.y, bv, bi)) {
      bv = v;
      bi = c.y;
    }
  }
  let top = wg_argmax(bv, bi, lid, p.vocab);
  if (lid == 0u) {
    wg_best = top;
  }
  let best = workgroupUniformLoad(&wg_best);
  var id = best.i;
  if (rc.temperature > 0.0 && !gumbel_draw(rc, p.vocab)) {
    id = sample_from(CANDS, rc, best.v, best.i, lid);
    if (id == NO_PICK) {
      id = sample_from(FULL, rc, best.v, best.i, lid);
    }
  }
  if (lid == 0u) {
    sampled[r_idx] = id;
    last_ids[rc.slot] = id;
  }
}
