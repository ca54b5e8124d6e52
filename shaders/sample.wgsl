// Picks the next token of each sampled row on the GPU, so decoding reads back only the ids.
// One workgroup per sample row, each with its own settings (SampleRow): greedy (temperature <= 0):
// argmax, lowest index on ties; otherwise softmax(logits / temperature) restricted to the top_k
// largest and then to the smallest top set holding top_p of the mass (thresholds found by
// bisection on order-preserving float bits), sampled with a counter-based random number
// (seed, counter): the same seed replays the same tokens.
// Constrained decoding: a row with `masked` 1 may only choose tokens whose bit is set in its
// sequence slot's mask row (bit i of word i >> 5); the others count as -inf in argmax, top-k, top-p
// and the draw. An unmasked row never reads the mask.
// The id goes to sampled[r] (read back) and last_ids[slot] (the next step's embedding reads it).
// Second pass of two: sample_candidates has spread the row over many workgroups, leaving per
// slice its max, its mass and its C best; this pass decides from those W·C candidates and reads
// the whole row only when they cannot decide (a slice's C-th candidate still kept, top_k > C).
// The draw walks the kept tokens in id order either way. With ARGMAX an unmasked greedy row takes
// the unembedding's pick (unembed.wgsl) without a pass.
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

var<workgroup> red_f: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;
var<workgroup> chosen: u32;
// This row's settings, read once and made workgroup-uniform (the bisection loops hold barriers).
var<workgroup> wg_row: SampleRow;
// The same settings for lg() (private variables are never uniform, so control flow uses a local).
var<private> sr: SampleRow;
#include lib/sample_row

// WG / 2 through a uniform: the barrier trees and scans below would otherwise be unrolled, and
// every barrier is a suspension point of lavapipe's coroutines: minutes of LLVM compile time.
fn wg_half() -> u32 {
  return select(WG / 2u, 0u, p.vocab == 0u);
}

#if SUBGROUPS
var<private> sg_lane: u32 = 0u;
var<private> sg_size: u32 = 1u;
#endif

// Workgroup sums, every thread getting the (uniform) result. With subgroups: one subgroupAdd and
// the partials of the subgroups, three barriers instead of a tree's nine.
@diagnostic(off, subgroup_uniformity)
fn sum_all(v: f32, lid: u32) -> f32 {
#if SUBGROUPS
  let part = subgroupAdd(v);
  workgroupBarrier();
  if (sg_lane == 0u) {
    red_f[lid / sg_size] = part;
  }
  workgroupBarrier();
  if (lid == 0u) {
    var t = 0.0;
    for (var i = 0u; i < (WG + sg_size - 1u) / sg_size; i++) {
      t += red_f[i];
    }
    red_f[WG - 1u] = t;
  }
  return workgroupUniformLoad(&red_f[WG - 1u]);
#else
  workgroupBarrier();
  red_f[lid] = v;
  workgroupBarrier();
  for (var s = wg_half(); s > 0u; s >>= 1u) {
    if (lid < s) {
      red_f[lid] += red_f[lid + s];
    }
    workgroupBarrier();
  }
  return workgroupUniformLoad(&red_f[0]);
#endif
}

@diagnostic(off, subgroup_uniformity)
fn count_all(v: u32, lid: u32) -> u32 {
#if SUBGROUPS
  let part = subgroupAdd(v);
  workgroupBarrier();
  if (sg_lane == 0u) {
    red_u[lid / sg_size] = part;
  }
  workgroupBarrier();
  if (lid == 0u) {
    var t = 0u;
    for (var i = 0u; i < (WG + sg_size - 1u) / sg_size; i++) {
      t += red_u[i];
    }
    red_u[WG - 1u] = t;
  }
  return workgroupUniformLoad(&red_u[WG - 1u]);
#else
  workgroupBarrier();
  red_u[lid] = v;
  workgroupBarrier();
  for (var s = wg_half(); s > 0u; s >>= 1u) {
    if (lid < s) {
      red_u[lid] += red_u[lid + s];
    }
    workgroupBarrier();
  }
  return workgroupUniformLoad(&red_u[0]);
#endif
}


// The whole row: argmax, then for sampling the top-k and top-p thresholds by bisection over the
// row and the draw. Used when the candidates cannot decide (the kept set may reach past them).
fn full_row(rc: SampleRow, lid: u32) -> u32 {
  let V = p.vocab;
  let row = rc.row * V;
  // argmax with the lowest index on ties
  var best = -3.4e38;
  var best_i = 0xffffffffu;
  for (var i = lid; i < V; i += WG) {
    let v = lg(row, i);
    if (v > best) {
      best = v;
      best_i = i;
    }
  }
  workgroupBarrier();
  red_f[lid] = best;
  red_u[lid] = best_i;
  workgroupBarrier();
  for (var s = wg_half(); s > 0u; s >>= 1u) {
    if (lid < s) {
      let o = red_f[lid + s];
      let oi = red_u[lid + s];
      if (o > red_f[lid] || (o == red_f[lid] && oi < red_u[lid])) {
        red_f[lid] = o;
        red_u[lid] = oi;
      }
    }
    workgroupBarrier();
  }
  let m = workgroupUniformLoad(&red_f[0]);
  let argmax = workgroupUniformLoad(&red_u[0]);
  if (rc.temperature <= 0.0) {
    return argmax;
  }
  let inv_t = 1.0 / rc.temperature;

  // top-k: the largest threshold key with at least top_k logits at or above it
  // masked-out tokens (NEG) sit below every threshold
  var lo_key = select(0u, key(NEG) + 1u, rc.masked != 0u);
  if (rc.top_k > 0u && rc.top_k < V) {
    var lo = lo_key;
    var hi = key(m);
    while (lo < hi) {
      let mid = lo + (hi - lo + 1u) / 2u;
      var c = 0u;
      for (var i = lid; i < V; i += WG) {
        c += select(0u, 1u, key(lg(row, i)) >= mid);
      }
      if (count_all(c, lid) >= rc.top_k) {
        lo = mid;
      } else {
        hi = mid - 1u;
      }
    }
    lo_key = lo;
  }

  // mass of the top-k set
  var z = 0.0;
  for (var i = lid; i < V; i += WG) {
    let v = lg(row, i);
    if (key(v) >= lo_key) {
      z += exp((v - m) * inv_t);
    }
  }
  let total = sum_all(z, lid);

  // top-p: the largest threshold whose set still holds top_p of the mass
  if (rc.top_p < 1.0) {
    var lo = lo_key;
    var hi = key(m);
    let need = rc.top_p * total;
    while (lo < hi) {
      let mid = lo + (hi - lo + 1u) / 2u;
      var s = 0.0;
      for (var i = lid; i < V; i += WG) {
        let v = lg(row, i);
        if (key(v) >= mid) {
          s += exp((v - m) * inv_t);
        }
      }
      if (sum_all(s, lid) >= need) {
        lo = mid;
      } else {
        hi = mid - 1u;
      }
    }
    lo_key = lo;
  }

  // draw: each thread owns a contiguous slice; the slice holding the goal finds the token
  let per = (V + WG - 1u) / WG;
  let b0 = min(lid * per, V);
  let b1 = min(b0 + per, V);
  var mine = 0.0;
  for (var i = b0; i < b1; i++) {
    let v = lg(row, i);
    if (key(v) >= lo_key) {
      mine += exp((v - m) * inv_t);
    }
  }
  workgroupBarrier();
  red_f[lid] = mine;
  workgroupBarrier();
  // inclusive scan (Hillis-Steele)
  for (var s = 1u; s < wg_half() * 2u; s <<= 1u) {
    let add = select(0.0, red_f[lid - s], lid >= s);
    workgroupBarrier();
    red_f[lid] += add;
    workgroupBarrier();
  }
  let kept = red_f[WG - 1u];
  let r = f32(hash(hash(rc.seed) ^ (rc.counter * 0x9e3779b9u + 0x632be5abu)) >> 8u) * (1.0 / 16777216.0);
  let goal = r * kept;
  let start = select(0.0, red_f[max(lid, 1u) - 1u], lid > 0u);
  if (lid == 0u) {
    chosen = argmax;  // fallback when rounding puts the goal past every slice
  }
  workgroupBarrier();
  if (goal >= start && goal < red_f[lid] && mine > 0.0) {
    var acc = start;
    var pick = b1 - 1u;
    for (var i = b0; i < b1; i++) {
      let v = lg(row, i);
      if (key(v) >= lo_key) {
        acc += exp((v - m) * inv_t);
        pick = i;
        if (acc > goal) {
          break;
        }
      }
    }
    chosen = pick;
  }
  return workgroupUniformLoad(&chosen);
}

// The random number of this draw in [0, 1).
fn uniform01(rc: SampleRow) -> f32 {
  return f32(hash(hash(rc.seed) ^ (rc.counter * 0x9e3779b9u + 0x632be5abu)) >> 8u) * (1.0 / 16777216.0);
}

// Candidate j of this row: (value, id); id NONE for an empty one.
fn candidate(r_idx: u32, j: u32) -> vec2<u32> {
  return cand[r_idx * p.slices * C + j];
}

fn cand_value(c: vec2<u32>) -> f32 {
  return select(NEG, bitcast<f32>(c.x), c.y != NONE);
}

// C, through a uniform: loops over the candidates with a constant trip count get fully unrolled
// (nested ones squared), which costs lavapipe's LLVM minutes to compile.
fn c_dyn() -> u32 {
  return select(C, 0u, p.vocab == 0u);
}

// The kept mass of slice w at threshold lo (its candidates at or above it).
fn slice_mass(r_idx: u32, w: u32, lo: u32, m: f32, inv_t: f32) -> f32 {
  var s = 0.0;
  for (var j = 0u; j < c_dyn(); j++) {
    let v = cand_value(candidate(r_idx, w * C + j));
    if (v > NEG && key(v) >= lo) {
      s += exp((v - m) * inv_t);
    }
  }
  return s;
}

const NONE: u32 = 0xFFFFFFFFu;
const NO_PICK: u32 = 0xFFFFFFFEu;

// Sampling from the candidates alone: top-k and top-p thresholds by bisection over the slices'
// C best, the total mass from the slices' sums, the draw in id order over the kept candidates.
// NO_PICK when a slice's C-th candidate is still kept (the kept set may reach past it) or top_k
// exceeds C: the whole row decides then.
fn from_candidates(rc: SampleRow, r_idx: u32, lid: u32, m: f32, argmax: u32) -> u32 {
  let n = p.slices * C;
  if (rc.top_k > C) {
    return NO_PICK;
  }
  let inv_t = 1.0 / rc.temperature;
  var lo_key = select(0u, key(NEG) + 1u, rc.masked != 0u);
  if (rc.top_k > 0u) {
    var lo = lo_key;
    var hi = key(m);
    while (lo < hi) {
      let mid = lo + (hi - lo + 1u) / 2u;
      var c = 0u;
      for (var j = lid; j < n; j += WG) {
        let v = cand_value(candidate(r_idx, j));
        c += select(0u, 1u, v > NEG && key(v) >= mid);
      }
      if (count_all(c, lid) >= rc.top_k) {
        lo = mid;
      } else {
        hi = mid - 1u;
      }
    }
    lo_key = lo;
  }
  // the mass the top-p cut is a share of: the top-k set's, or the whole row's
  var z = 0.0;
  if (rc.top_k > 0u) {
    for (var j = lid; j < n; j += WG) {
      let v = cand_value(candidate(r_idx, j));
      if (v > NEG && key(v) >= lo_key) {
        z += exp((v - m) * inv_t);
      }
    }
  } else {
    for (var w = lid; w < p.slices; w += WG) {
      let st = stats[r_idx * p.slices + w];
      if (st.x > NEG) {
        z += st.y * exp((st.x - m) * inv_t);
      }
    }
  }
  let total = sum_all(z, lid);
  if (rc.top_p < 1.0) {
    var lo = lo_key;
    var hi = key(m);
    let need = rc.top_p * total;
    while (lo < hi) {
      let mid = lo + (hi - lo + 1u) / 2u;
      var s = 0.0;
      for (var j = lid; j < n; j += WG) {
        let v = cand_value(candidate(r_idx, j));
        if (v > NEG && key(v) >= mid) {
          s += exp((v - m) * inv_t);
        }
      }
      if (sum_all(s, lid) >= need) {
        lo = mid;
      } else {
        hi = mid - 1u;
      }
    }
    lo_key = lo;
  }
  // every kept token must be a candidate: no slice's last candidate may still be kept
  var missing = 0u;
  for (var w = lid; w < p.slices; w += WG) {
    let v = cand_value(candidate(r_idx, w * C + C - 1u));
    missing += select(0u, 1u, v > NEG && key(v) >= lo_key);
  }
  if (count_all(missing, lid) > 0u) {
    return NO_PICK;
  }
  // the draw, in id order: slices (threads, contiguous id ranges) then ids within the slice
  var mine = 0.0;
  if (lid < p.slices) {
    mine = slice_mass(r_idx, lid, lo_key, m, inv_t);
  }
  workgroupBarrier();
  red_f[lid] = mine;
  workgroupBarrier();
  for (var s = 1u; s < wg_half() * 2u; s <<= 1u) {
    let add = select(0.0, red_f[lid - s], lid >= s);
    workgroupBarrier();
    red_f[lid] += add;
    workgroupBarrier();
  }
  let kept = red_f[WG - 1u];
  let goal = uniform01(rc) * kept;
  let start = select(0.0, red_f[max(lid, 1u) - 1u], lid > 0u);
  if (lid == 0u) {
    chosen = argmax;  // when rounding puts the goal past every slice
  }
  workgroupBarrier();
  if (lid < p.slices && goal >= start && goal < red_f[lid] && mine > 0.0) {
    var acc = start;
    var pick = NONE;
    var last = 0u;
    var first = true;
    // kept candidates by ascending id: the smallest id above the last one each time
    let cn = c_dyn();
    for (var t = 0u; t < cn; t++) {
      var next = NONE;
      var nv = 0.0;
      for (var j = 0u; j < cn; j++) {
        let c = candidate(r_idx, lid * C + j);
        let v = cand_value(c);
        if (v > NEG && key(v) >= lo_key && (first || c.y > last) && c.y < next) {
          next = c.y;
          nv = v;
        }
      }
      if (next == NONE) {
        break;
      }
      first = false;
      last = next;
      acc += exp((nv - m) * inv_t);
      pick = next;
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
  if (lid == 0u) {
    wg_row = samples[r_idx];
  }
  // rc: uniform copy for control flow; sr: the same values for lg()
  let rc = workgroupUniformLoad(&wg_row);
  sr = rc;
#if ARGMAX
  // greedy and unmasked: the unembedding already picked it
  if (rc.temperature <= 0.0 && rc.masked == 0u) {
    if (lid == 0u) {
      let id = ~argmax[rc.row].x;
      sampled[r_idx] = id;
      last_ids[rc.slot] = id;
    }
    return;
  }
#endif
  // the row's best: the best of the slices' first candidates (lowest id on ties)
  var bv = NEG;
  var bi = NONE;
  for (var w = lid; w < p.slices; w += WG) {
    let c = candidate(r_idx, w * C);
    let v = cand_value(c);
    if (c.y != NONE && (bi == NONE || v > bv || (v == bv && c.y < bi))) {
      bv = v;
      bi = c.y;
    }
  }
  workgroupBarrier();
  red_f[lid] = bv;
  red_u[lid] = bi;
  workgroupBarrier();
  for (var s = wg_half(); s > 0u; s >>= 1u) {
    if (lid < s) {
      let o = red_f[lid + s];
      let oi = red_u[lid + s];
      if (oi != NONE && (red_u[lid] == NONE || o > red_f[lid] || (o == red_f[lid] && oi < red_u[lid]))) {
        red_f[lid] = o;
        red_u[lid] = oi;
      }
    }
    workgroupBarrier();
  }
  let m = workgroupUniformLoad(&red_f[0]);
  let best = workgroupUniformLoad(&red_u[0]);
  var id = best;
  if (rc.temperature > 0.0) {
    id = from_candidates(rc, r_idx, lid, m, best);
    if (id == NO_PICK) {
      id = full_row(rc, lid);
    }
  }
  if (lid == 0u) {
    sampled[r_idx] = id;
    last_ids[rc.slot] = id;
  }
}
