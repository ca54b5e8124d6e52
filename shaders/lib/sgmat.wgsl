// Subgroup-matrix (tensor core) GEMM core, f16 x f16 -> f32: a workgroup computes a BM x BN tile of
// C = A B^T over K slices of BK = 32. Each slice is staged in workgroup memory as f16:
//   As[BM][SK]  row r = row r of A (tokens), read as left fragments (row-major, stride SK)
//   Bs[BN][SK]  row c = row c of B (weight rows = output columns), read as right fragments
//               column-major (element (k, c) at c * SK + k), so B is never transposed
// SK = BK + 8 pads rows by 16 bytes (bank spread). WM x WN warps (subgroups of SGW lanes) each own
// a 32 x 32 block of FM x FN fragments of SG_M x SG_N with f32 accumulators; results leave through
// Cs, one fragment per warp at a time, where the kernel's epilogue reads them per lane.
//
// SGMAT_EMULATE compiles the same layout, loads and epilogue with the fragment types and builtins
// replaced by plain per-lane code over As/Bs/Cs: a "fragment" is its offset into the tile, and
// lane l of a warp owns the fragment elements l, l + SGW, ... (row-major in SG_M x SG_N). Products
// of f16 operands are exact in f32, so the twin differs from the hardware only in the order of
// its f32 additions. It needs shader-f16 and nothing else (it runs on lavapipe).
//
// The real path requires every subgroup to have exactly SGW lanes laid out by
// local_invocation_index (warp = lid / SGW): the host uses it only where the adapter's
// subgroupMinSize = subgroupMaxSize = SGW, and the load-time self-check would catch another layout.
// defines: SG_M, SG_N, SG_K (the adapter's f16 config), SGW, BK (32).
#include lib/step
const WM: u32 = 2u;
const WN: u32 = 4u;
const FM: u32 = 32u / SG_M;
const FN: u32 = 32u / SG_N;
const BM: u32 = WM * 32u;
const BN: u32 = WN * 32u;
const SK: u32 = BK + 8u;
const SGM_WARPS: u32 = WM * WN;
const SGM_WG: u32 = SGM_WARPS * SGW;
const SGM_FRAG: u32 = SG_M * SG_N;
const SGM_PER_LANE: u32 = SGM_FRAG / SGW;

var<workgroup> As: array<f16, BM * SK>;
var<workgroup> Bs: array<f16, BN * SK>;
var<workgroup> Cs: array<f32, SGM_WARPS * SGM_FRAG>;

#if SGMAT_EMULATE
var<private> sgm_acc: array<array<f32, SGM_PER_LANE>, FM * FN>;
#else
alias SgmLeft = subgroup_matrix_left<f16, SG_K, SG_M>;
alias SgmRight = subgroup_matrix_right<f16, SG_N, SG_K>;
alias SgmResult = subgroup_matrix_result<f32, SG_N, SG_M>;
var<private> sgm_acc: array<SgmResult, FM * FN>;
#endif

fn sgm_zero() {
  for (var f = 0u; f < FM * FN; f++) {
#if SGMAT_EMULATE
    for (var j = 0u; j < SGM_PER_LANE; j++) {
      sgm_acc[f][j] = 0.0;
    }
#else
    sgm_acc[f] = SgmResult();
#endif
  }
}

// First tile row and column of the warp's 32 x 32 block.
fn sgm_warp_origin(lid: u32) -> vec2<u32> {
  let warp = lid / SGW;
  return vec2<u32>((warp / WN) * 32u, (warp % WN) * 32u);
}

// Accumulates one staged K slice into the warp's fragments. `bk` is BK through opaque().
fn sgm_step(lid: u32, bk: u32) {
  let o = sgm_warp_origin(lid);
  for (var kk = 0u; kk < bk; kk += SG_K) {
#if SGMAT_EMULATE
    let lane = lid % SGW;
    for (var fm = 0u; fm < FM; fm++) {
      for (var fn_ = 0u; fn_ < FN; fn_++) {
        let a0 = (o.x + fm * SG_M) * SK + kk;
        let b0 = (o.y + fn_ * SG_N) * SK + kk;
        // opaque: lavapipe's LLVM would unroll the whole fragment (minutes of compiling at 8x8x8)
        for (var j = 0u; j < opaque(SGM_PER_LANE, bk); j++) {
          let e = lane + j * SGW;
          let ar = a0 + (e / SG_N) * SK;
          let bc = b0 + (e % SG_N) * SK;
          var s = sgm_acc[fm * FN + fn_][j];
          for (var q = 0u; q < SG_K; q++) {
            s = fma(f32(As[ar + q]), f32(Bs[bc + q]), s);
          }
          sgm_acc[fm * FN + fn_][j] = s;
        }
      }
    }
#else
    var right: array<SgmRight, FN>;
    for (var fn_ = 0u; fn_ < FN; fn_++) {
      right[fn_] = subgroupMatrixLoad<SgmRight>(&Bs, (o.y + fn_ * SG_N) * SK + kk, true, SK);
    }
    for (var fm = 0u; fm < FM; fm++) {
      let left = subgroupMatrixLoad<SgmLeft>(&As, (o.x + fm * SG_M) * SK + kk, false, SK);
      for (var fn_ = 0u; fn_ < FN; fn_++) {
        sgm_acc[fm * FN + fn_] = subgroupMatrixMultiplyAccumulate(left, right[fn_], sgm_acc[fm * FN + fn_]);
      }
    }
#endif
  }
}

// Writes fragment f of the warp to its Cs slot (row-major SG_M x SG_N). The caller barriers before
// reading it with sgm_staged and again before the next sgm_stage.
fn sgm_stage(lid: u32, f: u32) {
  let base = (lid / SGW) * SGM_FRAG;
#if SGMAT_EMULATE
  let lane = lid % SGW;
  for (var j = 0u; j < SGM_PER_LANE; j++) {
    Cs[base + lane + j * SGW] = sgm_acc[f][j];
  }
#else
  subgroupMatrixStore(&Cs, base, sgm_acc[f], false, SG_N);
#endif
}

// Tile row and column of element (r, c) of the warp's fragment f.
fn sgm_cell(lid: u32, f: u32, r: u32, c: u32) -> vec2<u32> {
  let o = sgm_warp_origin(lid);
  return vec2<u32>(o.x + (f / FN) * SG_M + r, o.y + (f % FN) * SG_N + c);
}

// Element (r, c) of the warp's staged fragment.
fn sgm_staged(lid: u32, r: u32, c: u32) -> f32 {
  return Cs[(lid / SGW) * SGM_FRAG + r * SG_N + c];
}

// Stores four consecutive values of A's row r (slice columns 4q..4q+3) as f16: what the left
// fragments take (round to nearest even).
fn sgm_put_a(r: u32, q: u32, v: vec4<f32>) {
  let o = r * SK + 4u * q;
  As[o] = f16(v.x);
  As[o + 1u] = f16(v.y);
  As[o + 2u] = f16(v.z);
  As[o + 3u] = f16(v.w);
}

// Stores slice columns 4q..4q+3 of B's row c.
fn sgm_put_b(c: u32, q: u32, v: vec4<f32>) {
  let o = c * SK + 4u * q;
  Bs[o] = f16(v.x);
  Bs[o + 1u] = f16(v.y);
  Bs[o + 2u] = f16(v.z);
  Bs[o + 3u] = f16(v.w);
}

// Stores slice columns 4q..4q+3 of B's row c, already f16.
fn sgm_put_b16(c: u32, q: u32, v: vec4<f16>) {
  let o = c * SK + 4u * q;
  Bs[o] = v.x;
  Bs[o + 1u] = v.y;
  Bs[o + 2u] = v.z;
  Bs[o + 3u] = v.w;
}
