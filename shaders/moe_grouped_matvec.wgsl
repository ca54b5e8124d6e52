// Expert-grouped MXFP4 matvec for steps of a few tokens (2 to ~128): a workgroup owns ROWS output
// rows of one used expert (moe_route_parallel's list) and computes them for every sorted row
// (token, slot) routed to that expert. Each lane decodes its 16-byte block once per pass and
// applies it to all of the pass's rows (up to P <= 16; more rows take more passes). Absent rows cost
// nothing: each row's accumulation is skipped past the expert's row count (no padding arithmetic).
// The rows' activations are staged in workgroup memory one K chunk (TEAM blocks) at a time.
//   UP:    h[row][i] = SwiGLU(W1[e] x[t] + b1[e])  (rows 2i / 2i+1 = gate / up; t = order[row] / k)
//   DOWN:  y[row][c] = W2[e][c] · h[row] + b2[e][c]
// (moe_gather then adds the routing-weighted outputs to x in slot order.)
// The 16 accumulators are separate scalars and each decoded word is used and dropped before the
// next: an array indexed in the hot loop, or a whole decoded block kept live across the rows,
// spills on lavapipe (a CPU with 16 vector registers).
// Grid: x = row group of the expert's matrix, y = this shard's used experts (an upper bound; the
// surplus returns at once). defines: WG, TEAM (lanes per row, within the smallest subgroup with
// SUBGROUPS), P (rows per pass, a multiple of 4, <= 16); WG <= 32·TEAM; flag UP.
#include lib/mxfp4
#include lib/swiglu

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
// The staged activations; without subgroups the lanes' partial sums reuse it after the K loop.
var<workgroup> xs: array<vec4<f32>, P * KC>;
var<workgroup> red: array<f32, ROWS * P>;
// activation row of each row of the pass
var<workgroup> srcs: array<u32, P>;
// (expert within the shard, first sorted row, rows, valid); workgroup-uniform.
var<workgroup> wg_expert: vec4<u32>;

// Row t's dot product of 8 decoded weights (lo, hi) with its staged activations at vec4 v of the lane's block.
fn row_dot(lo: vec4<f32>, hi: vec4<f32>, t: u32, v: u32, lane: u32) -> f32 {
  let xb = t * KC + lane * 8u + v;
  return dot(lo, xs[xb]) + dot(hi, xs[xb + 1u]);
}

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
  let rb = (le * p.n + min(r, p.n - 1u)) * kb;
  for (var q0 = 0u; q0 < cnt; q0 += P) {
    let pc = min(P, cnt - q0);
    if (lid < pc) {
#if UP
      srcs[lid] = order[row0 + q0 + lid] / p.k;
#else
      srcs[lid] = row0 + q0 + lid;
#endif
    }
    workgroupBarrier();
    var a0 = 0.0; var a1 = 0.0; var a2 = 0.0; var a3 = 0.0;
    var a4 = 0.0; var a5 = 0.0; var a6 = 0.0; var a7 = 0.0;
    var a8 = 0.0; var a9 = 0.0; var a10 = 0.0; var a11 = 0.0;
    var a12 = 0.0; var a13 = 0.0; var a14 = 0.0; var a15 = 0.0;
    for (var ch = 0u; ch < kb; ch += TEAM) {
      for (var i = lid; i < pc * KC; i += WG) {
        let t = i / KC;
        let q = i % KC;
        let kvec = ch * 8u + q;
        var v = vec4<f32>(0.0);
        if (kvec < kv) {
          v = a[srcs[t] * kv + kvec];
        }
        xs[t * KC + q] = v;
      }
      workgroupBarrier();
      let c0 = ch + lane;
      let cstep = TEAM;
      let cend = select(0u, min(kb, ch + TEAM), live);
      for (var c = c0; c < cend; c += cstep) {
        let wv = blocks[rb + c];
        let s = mxfp4_scale_byte(scales[(rb + c) / 4u], rb + c);
        // 2^(s-113) as one f32 when s <= 240, else 2^15 · 2^(s-128) (lib/mxfp4 mxfp4_block):
        // folded into the decoded weights, exactly; one word (8 weights) live at a time
        let big = s > 240u;
        let f1 = select(bitcast<f32>((s + 14u) << 23u), 32768.0, big);
        let f2 = select(1.0, bitcast<f32>((s - 1u) << 23u), big);
        for (var q = 0u; q < 4u; q++) {
          let d = mxfp4_word(wv[q]);
          let lo = (d.lo * f1) * f2;
          let hi = (d.hi * f1) * f2;
          let v = 2u * q;
          a0 += row_dot(lo, hi, 0u, v, lane);
          // nested, so a pass of r rows tests r conditions per word, not 15
          if (pc > 1u) {
            a1 += row_dot(lo, hi, 1u, v, lane);
            if (pc > 2u) {
              a2 += row_dot(lo, hi, 2u, v, lane);
              if (pc > 3u) {
                a3 += row_dot(lo, hi, 3u, v, lane);
                if (pc > 4u) {
                  a4 += row_dot(lo, hi, 4u, v, lane);
                  if (pc > 5u) {
                    a5 += row_dot(lo, hi, 5u, v, lane);
                    if (pc > 6u) {
                      a6 += row_dot(lo, hi, 6u, v, lane);
                      if (pc > 7u) {
                        a7 += row_dot(lo, hi, 7u, v, lane);
                        if (pc > 8u) {
                          a8 += row_dot(lo, hi, 8u, v, lane);
                          if (pc > 9u) {
                            a9 += row_dot(lo, hi, 9u, v, lane);
                            if (pc > 10u) {
                              a10 += row_dot(lo, hi, 10u, v, lane);
                              if (pc > 11u) {
                                a11 += row_dot(lo, hi, 11u, v, lane);
                                if (pc > 12u) {
                                  a12 += row_dot(lo, hi, 12u, v, lane);
                                  if (pc > 13u) {
                                    a13 += row_dot(lo, hi, 13u, v, lane);
                                    if (pc > 14u) {
                                      a14 += row_dot(lo, hi, 14u, v, lane);
                                      if (pc > 15u) {
                                        a15 += row_dot(lo, hi, 15u, v, lane);
                                      }
                                    }
                                  }
                                }
                              }
                            }
                          }
                        }
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
      workgroupBarrier();
    }
    let acc = array<f32, 16>(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
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
        out[(row0 + q0 + t) * (p.n / 2u) + col / 2u] = swiglu(red[2u * j * P + t] + bias[bb], red[(2u * j + 1u) * P + t] + bias[bb + 1u], p.limit);
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
