// The grouped MXFP4 expert GEMM of moe_gemm on subgroup matrices (lib/sgmat): a workgroup owns one
// tile of moe_route's list (up to BM = 64 sorted rows, all of one expert) x BN = 128 rows of that
// expert's matrix. Each K slice of 32 is one MXFP4 block per weight row, decoded once to f16 with
// its scale folded in (lib/mxfp4_f16: exact for scale bytes 104..140, which the host checks);
// the activations are rounded to f16 as they are staged; f32 accumulation.
//   UP:    h[row][i] = SwiGLU(W1[e] x[t] + b1[e])  (rows 2i / 2i+1 = gate / up; t = order[row] / k)
//   DOWN:  y[row][c] = W2[e][c] · h[row] + b2[e][c]
// The grid's x covers an upper bound of this shard's tiles; surplus workgroups return at once.
// defines: lib/sgmat's; flags UP, SGMAT_EMULATE.
#include lib/step
#include lib/mxfp4_f16
#include lib/sgmat
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

fn a_row(row: u32, v: u32) -> vec4<f32> {
#if UP
  return a[(order[row] / p.k) * (p.kdim / 4u) + v];
#else
  return a[row * (p.kdim / 4u) + v];
#endif
}

// (expert, first row, rows) of this workgroup's tile, or rows = 0; workgroup-uniform.
var<workgroup> wg_tile: vec3<u32>;

@compute @workgroup_size(SGM_WG)
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
  let kb = p.kdim / 32u;
  sgm_zero();
  for (var kbi = 0u; kbi < kb; kbi++) {
    for (var i = lid; i < BM * (BK / 4u); i += SGM_WG) {
      let r = i / (BK / 4u);
      let q = i % (BK / 4u);
      var v = vec4<f32>(0.0);
      if (r < rows) {
        v = a_row(row0 + r, kbi * (BK / 4u) + q);
      }
      sgm_put_a(r, q, v);
    }
    for (var c = lid; c < BN; c += SGM_WG) {
      let col = c0 + c;
      var vals: array<vec4<f16>, 8>;
      if (col < p.n) {
        let b = (le * p.n + col) * kb + kbi;
        vals = mxfp4_block_f16(blocks[b], mxfp4_scale_byte(scales[b / 4u], b));
      }
      for (var q = 0u; q < 8u; q++) {
        sgm_put_b16(c, q, vals[q]);
      }
    }
    workgroupBarrier();
    sgm_step(lid, opaque(BK, p.kdim));
    workgroupBarrier();
  }
  let lane = lid % SGW;
  for (var f = 0u; f < opaque(FM * FN, p.kdim); f++) {
    sgm_stage(lid, f);
    workgroupBarrier();
#if UP
    // gate/up pairs are adjacent columns of one fragment row (SG_N is even)
    let half = p.n / 2u;
    for (var e = lane; e < SGM_FRAG / 2u; e += SGW) {
      let r = (2u * e) / SG_N;
      let c = (2u * e) % SG_N;
      let cell = sgm_cell(lid, f, r, c);
      let col = c0 + cell.y;
      if (cell.x < rows && col < p.n) {
        let gate = sgm_staged(lid, r, c) + bias[le * p.n + col];
        let up = sgm_staged(lid, r, c + 1u) + bias[le * p.n + col + 1u];
        out[(row0 + cell.x) * half + col / 2u] = swiglu(gate, up, p.limit);
      }
    }
#else
    for (var e = lane; e < SGM_FRAG; e += SGW) {
      let cell = sgm_cell(lid, f, e / SG_N, e % SG_N);
      let col = c0 + cell.y;
      if (cell.x < rows && col < p.n) {
        out[(row0 + cell.x) * p.n + col] = sgm_staged(lid, e / SG_N, e % SG_N) + bias[le * p.n + col];
      }
    }
#endif
    workgroupBarrier();
  }
}
