// Picks the next token from the last logits row on the GPU, so decoding reads back only the id.
// Greedy (temperature <= 0): argmax, lowest index on ties. Otherwise softmax(logits / temperature)
// restricted to the top_k largest and then to the smallest top set holding top_p of the mass
// (thresholds found by bisection on order-preserving float bits), sampled with a counter-based
// random number (seed, counter): the same seed replays the same tokens.
// Constrained decoding: when p.masked is 1, only tokens whose bit is set in `mask` (bit i of word
// i >> 5) can be chosen; the others count as -inf in argmax, top-k, top-p and the draw. With
// p.masked 0 the mask is never read.
// One workgroup; defines: WG (power of two).
#include lib/step
#include lib/hash

struct Params {
  vocab: u32,
  masked: u32,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;

const NEG = -3.4e38;

var<workgroup> red_f: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;
var<workgroup> chosen: u32;

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
  if (p.masked != 0u && ((mask[i >> 5u] >> (i & 31u)) & 1u) == 0u) {
    return NEG;
  }
  return v;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let V = p.vocab;
  let row = (step.out_rows - 1u) * V;

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
  if (step.temperature <= 0.0) {
    if (lid == 0u) {
      tokens[0] = argmax;
    }
    return;
  }
  let inv_t = 1.0 / step.temperature;

  // top-k: the largest threshold key with at least top_k logits at or above it
  // masked-out tokens (NEG) sit below every threshold
  var lo_key = select(0u, key(NEG) + 1u, p.masked != 0u);
  if (step.top_k > 0u && step.top_k < V) {
    var lo = lo_key;
    var hi = key(m);
    while (lo < hi) {
      let mid = lo + (hi - lo + 1u) / 2u;
      var c = 0u;
      for (var i = lid; i < V; i += WG) {
        c += select(0u, 1u, key(lg(row, i)) >= mid);
      }
      if (count_all(c, lid) >= step.top_k) {
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
  if (step.top_p < 1.0) {
    var lo = lo_key;
    var hi = key(m);
    let need = step.top_p * total;
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
  let r = f32(hash(hash(step.seed) ^ (step.counter * 0x9e3779b9u + 0x632be5abu)) >> 8u) * (1.0 / 16777216.0);
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
    tokens[0] = chosen;
  }
}
