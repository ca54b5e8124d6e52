// RMSNorm factors 1 / sqrt(mean(x[row]^2) + eps) of up to REDUCE_N rows, for the kernels that
// normalise their input themselves (qkv_rope, router_norm, unembed: every workgroup recomputes
// them rather than reading a normalised copy). rows[r] is the row of x of entry r < n; entries
// from n on are not read. Every thread gets all factors.
// Needs a binding `x: array<vec4<f32>>` of rows of H values, consts H, WG, REDUCE_N.
#include lib/reduce

fn rms_inv(rows: array<u32, REDUCE_N>, n: u32, lid: u32, eps: f32) -> array<f32, REDUCE_N> {
  var ss: array<f32, REDUCE_N>;
  for (var r = 0u; r < REDUCE_N; r++) {
    ss[r] = 0.0;
    if (r < n) {
      for (var i = lid; i < H / 4u; i += WG) {
        let v = x[rows[r] * (H / 4u) + i];
        ss[r] += dot(v, v);
      }
    }
  }
  wg_sum_n(&ss, lid);
  var inv: array<f32, REDUCE_N>;
  for (var r = 0u; r < REDUCE_N; r++) {
    inv[r] = inverseSqrt(red_result[r] / f32(H) + eps);
  }
  return inv;
}

// rms_inv of the n consecutive rows from t0.
fn rms_inv_from(t0: u32, n: u32, lid: u32, eps: f32) -> array<f32, REDUCE_N> {
  var rows: array<u32, REDUCE_N>;
  for (var r = 0u; r < REDUCE_N; r++) {
    rows[r] = t0 + r;
  }
  return rms_inv(rows, n, lid, eps);
}
