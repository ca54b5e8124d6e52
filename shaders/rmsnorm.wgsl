// y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * scale, one workgroup per token.
// defines: WG, REDUCE_N (=1), H (hidden size).
// With OUT_ROWS (the final norm) only the step's logits rows are normalised: y[r] = norm(x[rows[r]]),
// compacted, so the unembedding reads just the rows that need logits.
#include lib/reduce
#include lib/step

struct Params {
  eps: f32,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
#if OUT_ROWS
@group(0) @binding(5) var<storage, read> rows: array<u32>;
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
  let t = wid.x + wid.y * nwg.x;
#if OUT_ROWS
  if (t >= step.rows) {
    return;
  }
  let base = rows[t] * H;
#else
  if (t >= step.tokens) {
    return;
  }
  let base = t * H;
#endif
  var acc: array<f32, REDUCE_N>;
  acc[0] = 0.0;
  for (var i = lid; i < H; i += WG) {
    let v = x[base + i];
    acc[0] += v * v;
  }
  wg_sum_n(&acc, lid);
  let inv = inverseSqrt(red_result[0] / f32(H) + p.eps);
  for (var i = lid; i < H; i += WG) {
    y[t * H + i] = x[base + i] * inv * scale[i];
  }
}
