// y = x W^T (lib/dense_io: bias, residual add, shards) as a tiled GEMM for steps of many tokens
// (prefill chunks, big batches): a workgroup owns BM tokens x BN rows of W, and each K slice of BK
// is loaded once into workgroup memory (bf16 widened exactly to f32) for all BM tokens, so W is
// read once per BM tokens rather than once per few tokens as in matmul_bf16. Row slices of the
// tile past the step's rows do no arithmetic (lib/gemm gemm_live).
// K a multiple of BK (a multiple of 8). defines: BM, BN, BK, TM, TN; flags of lib/dense_io.
#include lib/dense_io
#include lib/bf16
#include lib/gemm

fn gemm_a(row: u32, v: u32) -> vec4<f32> {
  return x[row * (p.k / 4u) + v];
}

@compute @workgroup_size(GEMM_WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let tokens = dense_rows();
  let t0 = wid.x * BM;
  let c0 = wid.y * BN;
  if (t0 >= tokens) {
    return;
  }
  let tr = lid % ROW_THREADS;
  let tc = lid / ROW_THREADS;
  let kv8 = p.k / 8u;  // vec4<u32> (8 bf16) of W per row
  let live = gemm_live(tokens - t0);
  gemm_zero();
  for (var kb = 0u; kb < p.k / BK; kb++) {
    gemm_load_a(lid, t0, tokens - t0, kb);
    for (var i = lid; i < BN * (BK / 8u); i += GEMM_WG) {
      let c = i / (BK / 8u);
      let q = i % (BK / 8u);
      var wv = vec4<u32>(0u);
      if (c0 + c < p.n) {
        wv = w[(c0 + c) * kv8 + kb * (BK / 8u) + q];
      }
      let o = c * KS + 8u * q;
      Bs[o] = bf16_lo(wv.x);
      Bs[o + 1u] = bf16_hi(wv.x);
      Bs[o + 2u] = bf16_lo(wv.y);
      Bs[o + 3u] = bf16_hi(wv.y);
      Bs[o + 4u] = bf16_lo(wv.z);
      Bs[o + 5u] = bf16_hi(wv.z);
      Bs[o + 6u] = bf16_lo(wv.w);
      Bs[o + 7u] = bf16_hi(wv.w);
    }
    workgroupBarrier();
    gemm_step(tr, tc, opaque(BK, p.k), live);
    workgroupBarrier();
  }
  for (var i = 0u; i < TM; i++) {
    let t = t0 + tr + i * ROW_THREADS;
    if (t >= tokens) {
      continue;
    }
    for (var j = 0u; j < TN; j++) {
      let n = c0 + tc * TN + j;
      if (n < p.n) {
        dense_out(t, n, acc[i][j]);
      }
    }
  }
}
