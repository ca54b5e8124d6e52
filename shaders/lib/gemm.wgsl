// Register-tiled GEMM core: a workgroup computes a BM x BN tile of C = A B^T, stepping over K in
// slices of BK held in workgroup memory: As[BM][BK] (rows of A) and Bs[BN][BK] (rows of B, i.e.
// output columns), each loaded once per slice and read by every thread that needs it. Each of the
// (BM/TM)·(BN/TN) threads keeps a TM x TN block of f32 accumulators: rows tr + i·(BM/TM), columns
// tc·TN + j (a thread's columns are consecutive, so gate/up pairs stay together).
// The including kernel fills the tiles (A with gemm_load_a, B itself: its weight format),
// barriers, calls gemm_step, barriers. It defines `fn gemm_a(row: u32, v: u32) -> vec4<f32>`, vec4
// v of row `row` of A. gemm_step skips the row slices i >= live (a thread's rows tr + i·(BM/TM)
// past the tile's rows; the same i for every lane, so none diverges): a partial tile does the
// arithmetic of its rows rounded up to BM/TM, not of BM.
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

// Loads As for the K slice kb: tile row r < rows is A's row row0 + r, rows past `rows` are zero.
fn gemm_load_a(lid: u32, row0: u32, rows: u32, kb: u32) {
  for (var i = lid; i < BM * (BK / 4u); i += GEMM_WG) {
    let r = i / (BK / 4u);
    let q = i % (BK / 4u);
    var v = vec4<f32>(0.0);
    if (r < rows) {
      v = gemm_a(row0 + r, kb * (BK / 4u) + q);
    }
    As[r * KS + 4u * q] = v.x;
    As[r * KS + 4u * q + 1u] = v.y;
    As[r * KS + 4u * q + 2u] = v.z;
    As[r * KS + 4u * q + 3u] = v.w;
  }
}

// Row slices of a tile holding `rows` rows that have any live row: gemm_step's `live`.
fn gemm_live(rows: u32) -> u32 {
  return min(TM, (rows + ROW_THREADS - 1u) / ROW_THREADS);
}

// Accumulates one K slice for the thread's block: tr in [0, BM/TM), tc in [0, BN/TN), row slices
// i < live. `bk` is BK through opaque() (lib/step): the inner TM x TN block stays unrolled (registers).
fn gemm_step(tr: u32, tc: u32, bk: u32, live: u32) {
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
      if (i < live) {
        for (var j = 0u; j < TN; j++) {
          acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
      }
    }
  }
}
