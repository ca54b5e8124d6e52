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
// With ARGMAX an unmasked greedy row takes the unembedding's pick (unembed.wgsl) without a pass.
// defines: WG (power of two).
#include lib/step
#include lib/hash

struct Params {
  vocab: u32,
  mask_words: u32,  // u32 words per mask row: ceil(vocab / 32)
}

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

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> samples: array<SampleRow>;
@group(0) @binding(3) var<storage, read> logits: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read_write> sampled: array<u32>;
@group(0) @binding(6) var<storage, read_write> last_ids: array<u32>;
#if ARGMAX
// the unembedding's greedy pick per logits row: (~index, orderable value)
@group(0) @binding(7) var<storage, read> argmax: array<vec2<u32>>;
#endif

const NEG = -3.4e38;

var<workgroup> red_f: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;
var<workgroup> chosen: u32;
// This row's settings, read once and made workgroup-uniform (the bisection loops hold barriers).
var<workgroup> wg_row: SampleRow;
// The same settings for lg() (private variables are never uniform, so control flow uses a local).
var<private> sr: SampleRow;

// Monotone map f32 -> u32: a < b  <=>  key(a) < key(b).
fn key(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn sum_all(v: f32, lid: u32) -> f32 {
  workgroupBarrier();
  red_f[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red_f[lid] += red_f[lid + s];
    }
    workgroupBarrier();
  }
  return workgroupUniformLoad(&red_f[0]);
}

fn count_all(v: u32, lid: u32) -> u32 {
  workgroupBarrier();
  red_u[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red_u[lid] += red_u[lid + s];
    }
    workgroupBarrier();
  }
  return workgroupUniformLoad(&red_u[0]);
}

// The logit of token i in row `row`, or NEG when the mask rules it out.
fn lg(row: u32, i: u32) -> f32 {
  let v = logits[row + i];
  if (sr.masked != 0u && ((mask[sr.slot * p.mask_words + (i >> 5u)] >> (i & 31u)) & 1u) == 0u) {
    return NEG;
  }
  return v;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
  let V = p.vocab;
  let row = rc.row * V;
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
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
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
    if (lid == 0u) {
      sampled[r_idx] = argmax;
      last_ids[rc.slot] = argmax;
    }
    return;
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
  for (var s = 1u; s < WG; s <<= 1u) {
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
  workgroupBarrier();
  if (lid == 0u) {
    sampled[r_idx] = chosen;
    last_ids[rc.slot] = chosen;
  }
}
