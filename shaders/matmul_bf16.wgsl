// y[t][n] = sum_k x[t][k] * W[n][k] (+ bias[n]) (+ y[t][n] when ACCUMULATE: residual add in place).
// W is bf16 row-major [N][K], read 8 values (16 bytes) at a time. A workgroup computes ROWS rows for
// TT tokens so each weight load serves TT tokens.
// defines: WG, ROWS, TT, REDUCE_N (= ROWS*TT); flags: BIAS, ACCUMULATE, OUT_ROWS (x holds
// the step's logits rows instead of all its tokens).
#include lib/reduce
#include lib/bf16
#include lib/step

struct Params {
  k: u32,   // input size, a multiple of 8
  n: u32,   // output rows
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> w: array<vec4<u32>>;
#if BIAS
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
#else
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
#endif

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
  let N = p.n;
  let KV = p.k / 8u;   // 16-byte weight vectors per row
  let n0 = (wid.x + wid.y * nwg.x) * ROWS;
  let t0 = wid.z * TT;
  if (n0 >= N) {
    return;
  }
  var acc: array<f32, REDUCE_N>;
  for (var i = 0u; i < REDUCE_N; i++) {
    acc[i] = 0.0;
  }
#if OUT_ROWS
  let tokens = step.out_rows;
#else
  let tokens = step.tokens;
#endif
  if (t0 >= tokens) {
    return;
  }
  let nt = min(TT, tokens - t0);
  let nr = min(ROWS, N - n0);
  for (var c = lid; c < KV; c += WG) {
    for (var r = 0u; r < nr; r++) {
      let wv = w[(n0 + r) * KV + c];
      for (var tt = 0u; tt < nt; tt++) {
        let xi = (t0 + tt) * (p.k / 4u) + 2u * c;
        acc[r * TT + tt] += dot8(wv, x[xi], x[xi + 1u]);
      }
    }
  }
  wg_sum_n(&acc, lid);
  if (lid < REDUCE_N) {
    let r = lid / TT;
    let tt = lid % TT;
    if (r < nr && tt < nt) {
      let o = (t0 + tt) * N + n0 + r;
      var v = red_result[lid];
#if BIAS
      v += bias[n0 + r];
#endif
#if ACCUMULATE
      v += y[o];
#endif
      y[o] = v;
    }
  }
}
