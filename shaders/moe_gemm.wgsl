// Grouped MXFP4 GEMM over a step's expert-sorted rows (moe_route): a workgroup owns one tile (up to
// BM sorted rows, all of one expert) x BN output rows of that expert's matrix. Each K slice of 32
// (one MXFP4 block per weight row) is decoded once into workgroup memory and serves all the tile's
// rows, so an expert's weights are read once per tile instead of once per (token, slot). A partial
// tile does the arithmetic of its rows rounded up to BM/TM (lib/gemm gemm_live).
//   UP:    h[row][i] = SwiGLU(W1[e] x[t] + b1[e])  (rows 2i / 2i+1 = gate / up; x[t] with t = order[row] / k)
//   DOWN:  y[row][c] = W2[e][c] · h[row] + b2[e][c]
// The grid's x covers an upper bound of this shard's tiles; surplus workgroups return at once.
// defines: BM, BN, BK (32), TM, TN; flag UP.
#include lib/step
#include lib/mxfp4
#include lib/gemm
#include lib/swiglu

struct Params {
  kdim: u32,       // K: H (UP) or I (DOWN), a multiple of 32
  n: u32,          // rows of one expert's matrix: 2I (UP) or H (DOWN)
  k: u32,          // experts per token
  e: u32,          // experts in all
  e0: u32,         // the weight buffers hold experts [e0, e0 + ec) (one shard)
  ec: u32,
  tiles_off: u32,  // word offset of the tile list in groups
  limit: f32,      // swiglu_limit (UP)
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

// Row `row` of A: the token of sorted row `row` (UP: x), or the sorted row itself (DOWN: h).
fn gemm_a(row: u32, v: u32) -> vec4<f32> {
#if UP
  return a[(order[row] / p.k) * (p.kdim / 4u) + v];
#else
  return a[row * (p.kdim / 4u) + v];
#endif
}

// (expert, first row, rows) of this workgroup's tile, or rows = 0; workgroup-uniform.
var<workgroup> wg_tile: vec3<u32>;

@compute @workgroup_size(GEMM_WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  if (lid == 0u) {
    let tile = groups[p.e + 1u + p.e0] + wid.x;
    var t = vec3<u32>(0u, 0u, 0u);
    if (tile < groups[p.e + 1u + p.e0 + p.ec]) {
      let ex = groups[p.tiles_off + 2u * tile];
      let row0 = groups[p.tiles_off + 2u * tile + 1u];
      t = vec3<u32>(ex, row0, min(BM, groups[ex + 1u] - row0));
    }
    wg_tile = t;
  }
  let tile = workgroupUniformLoad(&wg_tile);
  if (tile.z == 0u) {
    return;
  }
  let le = tile.x - p.e0;
  let row0 = tile.y;
  let rows = tile.z;
  let c0 = wid.y * BN;
  let tr = lid % ROW_THREADS;
  let tc = lid / ROW_THREADS;
  let kb = p.kdim / 32u;
  gemm_zero();
  for (var kbi = 0u; kbi < kb; kbi++) {
    gemm_load_a(lid, row0, rows, kbi);
    for (var c = lid; c < BN; c += GEMM_WG) {
      let col = c0 + c;
      var vals: array<vec4<f32>, 8>;
      if (col < p.n) {
        let b = (le * p.n + col) * kb + kbi;
        vals = mxfp4_block(blocks[b], mxfp4_scale_byte(scales[b / 4u], b));
      }
      for (var q = 0u; q < 8u; q++) {
        Bs[c * KS + 4u * q] = vals[q].x;
        Bs[c * KS + 4u * q + 1u] = vals[q].y;
        Bs[c * KS + 4u * q + 2u] = vals[q].z;
        Bs[c * KS + 4u * q + 3u] = vals[q].w;
      }
    }
    workgroupBarrier();
    gemm_step(tr, tc, opaque(BK, p.kdim), gemm_live(rows));
    workgroupBarrier();
  }
  for (var i = 0u; i < TM; i++) {
    let r = tr + i * ROW_THREADS;
    if (r >= rows) {
      continue;
    }
    let row = row0 + r;
#if UP
    let half = p.n / 2u;
    for (var m = 0u; m < TN / 2u; m++) {
      let col = c0 + tc * TN + 2u * m;
      if (col < p.n) {
        let gate = acc[i][2u * m] + bias[le * p.n + col];
        let up = acc[i][2u * m + 1u] + bias[le * p.n + col + 1u];
        out[row * half + col / 2u] = swiglu(gate, up, p.limit);
      }
    }
#else
    for (var j = 0u; j < TN; j++) {
      let col = c0 + tc * TN + j;
      if (col < p.n) {
        out[row * p.n + col] = acc[i][j] + bias[le * p.n + col];
      }
    }
#endif
  }
}
