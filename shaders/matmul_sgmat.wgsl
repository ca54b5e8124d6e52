// y = x W^T (lib/dense_io: bias, residual add, shards, logits rows) on subgroup matrices: the
// tiled GEMM of matmul_tiled with f16 operands and f32 accumulation (lib/sgmat). x's f32 rows are
// rounded to f16 as they are staged; bf16 W becomes f16 exactly except below 2^-14 (f16
// subnormals keep 2^-24 absolute) and above 65504 (none in a checkpoint).
// A workgroup owns BM = 64 tokens x BN = 128 rows of W. K a multiple of 32.
// defines: lib/sgmat's; flags of lib/dense_io, SGMAT_EMULATE.
#include lib/dense_io
#include lib/bf16
#include lib/sgmat

@compute @workgroup_size(SGM_WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let tokens = dense_rows();
  let t0 = wid.x * BM;
  let c0 = wid.y * BN;
  if (t0 >= tokens) {
    return;
  }
  let kv4 = p.k / 4u;  // vec4<f32> of x per row
  let kv8 = p.k / 8u;  // vec4<u32> (8 bf16) of W per row
  sgm_zero();
  for (var kb = 0u; kb < p.k / BK; kb++) {
    for (var i = lid; i < BM * (BK / 4u); i += SGM_WG) {
      let r = i / (BK / 4u);
      let q = i % (BK / 4u);
      var v = vec4<f32>(0.0);
      if (t0 + r < tokens) {
        v = x[(t0 + r) * kv4 + kb * (BK / 4u) + q];
      }
      sgm_put_a(r, q, v);
    }
    for (var i = lid; i < BN * 4u; i += SGM_WG) {
      let c = i / 4u;
      let q = i % 4u;
      var wv = vec4<u32>(0u);
      if (c0 + c < p.n) {
        wv = w[(c0 + c) * kv8 + kb * 4u + q];
      }
      sgm_put_b(c, 2u * q, vec4<f32>(bf16_lo(wv.x), bf16_hi(wv.x), bf16_lo(wv.y), bf16_hi(wv.y)));
      sgm_put_b(c, 2u * q + 1u, vec4<f32>(bf16_lo(wv.z), bf16_hi(wv.z), bf16_lo(wv.w), bf16_hi(wv.w)));
    }
    workgroupBarrier();
    sgm_step(lid, opaque(BK, p.k));
    workgroupBarrier();
  }
  let lane = lid % SGW;
  for (var f = 0u; f < opaque(FM * FN, p.k); f++) {
    sgm_stage(lid, f);
    workgroupBarrier();
    for (var e = lane; e < SGM_FRAG; e += SGW) {
      let cell = sgm_cell(lid, f, e / SG_N, e % SG_N);
      let t = t0 + cell.x;
      let n = c0 + cell.y;
      if (t < tokens && n < p.n) {
        dense_out(t, n, sgm_staged(lid, e / SG_N, e % SG_N));
      }
    }
    workgroupBarrier();
  }
}
