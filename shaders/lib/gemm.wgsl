// Register-tiled GEMM core: a workgroup computes a BM x BN tile of C = A B^T, stepping over K in
// slices of BK held in workgroup memory: As[BM][BK] (rows of A) and Bs[BN][BK] (rows of B, i.e.
// output columns), each loaded once per slice and read by every thread that needs it. Each of the
// (BM/TM)·(BN/TN) threads keeps a TM x TN block of f32 accumulators: rows tr + i·(BM/TM), columns
// tc·TN + j (a thread's columns are consecutive, so gate/up pairs stay together).
// The including kernel fills the tiles, barriers, calls gemm_step, barriers.
// defines: BM, BN, BK, TM, TN.
const GEMM_WG: u32 = (BM / TM) * (BN / TN);
const ROW_THREADS: u32 = BM / TM;
const KS: u32 = BK + 1u;  // padded row stride of the tiles

var<workgroup> As: array<f32, BM * KS>;
var<workgroup> Bs: array<f32, BN * KS>;
var<private> acc: array<array<f32, TN>, TM>;

fn gemm_zero() {
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) {
      acc[i][j] = 0.0;
    }
  }
}

// Accumulates one K slice for the thread's block: tr in [0, BM/TM), tc in [0, BN/TN). `bk` is BK
// passed through a uniform by the caller: with a constant trip count LLVM (lavapipe) unrolls the
// slice fully and spends seconds compiling it; the inner TM x TN block stays unrolled (registers).
fn gemm_step(tr: u32, tc: u32, bk: u32) {
  for (var kk = 0u; kk < bk; kk++) {
    var a: array<f32, TM>;
    var b: array<f32, TN>;
    for (var i = 0u; i < TM; i++) {
      a[i] = As[(tr + i * ROW_THREADS) * KS + kk];
    }
    for (var j = 0u; j < TN; j++) {
      b[j] = Bs[(tc * TN + j) * KS + kk];
    }
    for (var i = 0u; i < TM; i++) {
      for (var j = 0u; j < TN; j++) {
        acc[i][j] = fma(a[i], b[j], acc[i][j]);
      }
    }
  }
}
