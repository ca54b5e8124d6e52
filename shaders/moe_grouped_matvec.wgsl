// Expert-grouped MXFP4 matvec for steps of a few tokens (2 to ~128): a workgroup owns ROWS output
// rows of one used expert (moe_route_parallel's list) and computes them for every sorted row
// (token, slot) routed to that expert. Each lane decodes its 16-byte block once per pass and
// applies it to all of the pass's rows; the rows' activations are staged in workgroup memory one
// K chunk (TEAM blocks) at a time, up to P rows per pass, in more passes when the expert has more.
// Absent rows cost nothing: loops stop at the expert's row count (no padding arithmetic).
//   UP:    h[row][i] = SwiGLU(W1[e] x[t] + b1[e])  (rows 2i / 2i+1 = gate / up; t = order[row] / k)
//   DOWN:  y[row][c] = W2[e][c] · h[row] + b2[e][c]
// (moe_gather then adds the routing-weighted outputs to x in slot order.) SwiGLU is written here
// with moe_up_swiglu's clamp/alpha/limit; it moves to a shared library once there is one.
// Grid: x = row group of the expert's matrix, y = this shard's used experts (an upper bound; the
// surplus returns at once). defines: WG, TEAM (lanes per row, within the smallest subgroup with
// SUBGROUPS), P (rows per pass, a multiple of 4); WG <= 32·TEAM; flag UP.
#include lib/mxfp4

struct Params {
  kdim: u32,      // K: H (UP) or I (DOWN), a multiple of 32
  n: u32,         // rows of one expert's matrix: 2I (UP) or H (DOWN)
  k: u32,         // experts per token
  e: u32,         // experts in all
  e0: u32,        // the weight buffers hold experts [e0, e0 + ec) (one shard)
  ec: u32,
  used_off: u32,  // word offset of the used-expert list in groups
  limit: f32,     // swiglu_limit (UP)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> groups: array<u32>;
@group(0) @binding(2) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> scales: array<u32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
#if UP
@group(0) @binding(7) var<storage, read> order: array<u32>;
#endif

const ROWS: u32 = WG / TEAM;
const KC: u32 = TEAM * 8u;  // vec4s of one row's activations per K chunk (TEAM blocks of 32)
// The staged activations; without subgroups the lanes' partial sums reuse it after the last chunk.
var<workgroup> xs: array<vec4<f32>, P * KC>;
var<workgroup> red: array<f32, ROWS * P>;
// (expert within the shard, first sorted row, rows, valid); workgroup-uniform.
var<workgroup> wg_expert: vec4<u32>;

@compute @workgroup_size(WG)
@diagnostic(off, subgroup_uniformity)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  if (lid == 0u) {
    let u = groups[p.used_off + p.e0] + wid.y;
    var info = vec4<u32>(0u);
    if (u < groups[p.used_off + p.e0 + p.ec]) {
      let ex = groups[p.used_off + p.e + 1u + u];
      info = vec4<u32>(ex - p.e0, groups[ex], groups[ex + 1u] - groups[ex], 1u);
    }
    wg_expert = info;
  }
  let info = workgroupUniformLoad(&wg_expert);
  if (info.w == 0u) {
    return;
  }
  let le = info.x;
  let row0 = info.y;
  let cnt = info.z;
  let kb = p.kdim / 32u;
  let kv = p.kdim / 4u;
  let team = lid / TEAM;
  let lane = lid % TEAM;
  let r = wid.x * ROWS + team;
  let live = r < p.n;
  let nch = (kb + TEAM - 1u) / TEAM;
  for (var q0 = 0u; q0 < cnt; q0 += P) {
    let pc = min(P, cnt - q0);
    var acc: array<f32, P>;
    for (var t = 0u; t < P; t++) {
      acc[t] = 0.0;
    }
    for (var ch = 0u; ch < nch; ch++) {
      for (var i = lid; i < pc * KC; i += WG) {
        let t = i / KC;
        let q = i % KC;
        let kvec = ch * KC + q;
#if UP
        let src = order[row0 + q0 + t] / p.k;
#else
        let src = row0 + q0 + t;
#endif
        var v = vec4<f32>(0.0);
        if (kvec < kv) {
          v = a[src * kv + kvec];
        }
        xs[t * KC + q] = v;
      }
      workgroupBarrier();
      let c = ch * TEAM + lane;
      if (live && c < kb) {
        let b = (le * p.n + r) * kb + c;
        let wv = blocks[b];
        let s = mxfp4_scale_byte(scales[b / 4u], b);
        let w0 = mxfp4_word(wv.x);
        let w1 = mxfp4_word(wv.y);
        let w2 = mxfp4_word(wv.z);
        let w3 = mxfp4_word(wv.w);
        // 2^(s-113) as one f32 when s <= 240, else 2^15 · 2^(s-128) (lib/mxfp4 mxfp4_scale)
        let big = s > 240u;
        let f1 = select(bitcast<f32>((s + 14u) << 23u), 32768.0, big);
        let f2 = select(1.0, bitcast<f32>((s - 1u) << 23u), big);
        let xo = lane * 8u;
        for (var t = 0u; t < P; t++) {
          if (t < pc) {
            let xb = t * KC + xo;
            let d = dot(w0.lo, xs[xb]) + dot(w0.hi, xs[xb + 1u]) + dot(w1.lo, xs[xb + 2u]) + dot(w1.hi, xs[xb + 3u])
                  + dot(w2.lo, xs[xb + 4u]) + dot(w2.hi, xs[xb + 5u]) + dot(w3.lo, xs[xb + 6u]) + dot(w3.hi, xs[xb + 7u]);
            acc[t] += (d * f1) * f2;
          }
        }
      }
      workgroupBarrier();
    }
    // the team's sum per row of the pass -> red[team][t]
#if SUBGROUPS
    for (var t = 0u; t < P; t++) {
      var v = acc[t];
      for (var o = 1u; o < TEAM; o <<= 1u) {
        v += subgroupShuffleXor(v, o);
      }
      if (lane == 0u) {
        red[team * P + t] = v;
      }
    }
#else
    for (var j = 0u; j < P / 4u; j++) {
      xs[lid * (P / 4u) + j] = vec4<f32>(acc[4u * j], acc[4u * j + 1u], acc[4u * j + 2u], acc[4u * j + 3u]);
    }
    workgroupBarrier();
    for (var i = lid; i < ROWS * P; i += WG) {
      let rr = i / P;
      let t = i % P;
      var s = 0.0;
      for (var l = 0u; l < TEAM; l++) {
        s += xs[(rr * TEAM + l) * (P / 4u) + t / 4u][t % 4u];
      }
      red[i] = s;
    }
#endif
    workgroupBarrier();
#if UP
    for (var i = lid; i < (ROWS / 2u) * pc; i += WG) {
      let j = i / pc;
      let t = i % pc;
      let col = wid.x * ROWS + 2u * j;
      if (col < p.n) {
        let bb = le * p.n + col;
        let gate = min(red[2u * j * P + t] + bias[bb], p.limit);
        let up = clamp(red[(2u * j + 1u) * P + t] + bias[bb + 1u], -p.limit, p.limit);
        // sigmoid without overflow: z = exp(-|a|) <= 1.
        let z = exp(-1.702 * abs(gate));
        let sig = select(z / (1.0 + z), 1.0 / (1.0 + z), gate >= 0.0);
        out[(row0 + q0 + t) * (p.n / 2u) + col / 2u] = gate * sig * (up + 1.0);
      }
    }
#else
    for (var i = lid; i < ROWS * pc; i += WG) {
      let rr = i / pc;
      let t = i % pc;
      let col = wid.x * ROWS + rr;
      if (col < p.n) {
        out[(row0 + q0 + t) * p.n + col] = red[rr * P + t] + bias[le * p.n + col];
      }
    }
#endif
  }
}
