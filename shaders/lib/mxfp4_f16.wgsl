// MXFP4 blocks as f16 with the E8M0 scale folded in, for the subgroup-matrix GEMMs (whose
// fragments allow no per-(row, block) scale). The value FP4 * 2^(s-127) is formed exactly in f32
// (lib/mxfp4 mxfp4_block) and rounded to f16 once. That is exact for scale bytes s in 104..140:
// the smallest nonzero |FP4| = 0.5 then is >= 2^-24 (f16's least subnormal, and 1.5 * 2^-23 is a
// subnormal too), the largest 6 * 2^13 = 49152 <= 65504. Outside that range values underflow or
// overflow: the host runs such layers on the f32 kernels (dispatch-policy.ts sgmatMoeScalesExact).
// Needs `enable f16` (flag F16).
#include lib/mxfp4

fn mxfp4_block_f16(wv: vec4<u32>, s: u32) -> array<vec4<f16>, 8> {
  let v = mxfp4_block(wv, s);
  var out: array<vec4<f16>, 8>;
  for (var q = 0u; q < 8u; q++) {
    out[q] = vec4<f16>(v[q]);
  }
  return out;
}
