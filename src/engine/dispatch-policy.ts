// Which variant of each kernel a step runs: the one home of every threshold. forward.ts builds ONE
// program that holds every variant of every kernel, and each variant's dispatch carries its
// predicate from this file (Dispatch.when); a step encodes the dispatches whose predicate holds
// for its StepShape and skips the rest. So the choice is made per kernel, from the step's typed
// shape, not by picking one of two whole programs: a new small-M variant is one more dispatch
// with one more predicate here, and two kernels of a block may switch at different sizes as long
// as the buffers between them agree (noted below where they must switch together).
//
// What a step of T tokens and R logits rows runs today:
//   attention block  T <= 4: qkv_rope (norm + QKV + RoPE + KV write in one matvec of 4 tokens)
//                    T > 4:  rmsnorm, QKV, rope_kv_write
//                    then the attention kernels the host plan asks for (decode items, prefill
//                    items, combine: AttentionPlan) and the out projection
//   dense matmuls    1 row: matmul_bf16; 2..31 rows: matmul_rows_bf16, the variant of 2, 4, 8, 16
//                    or 32 rows that holds them (each weight read once for all of them, no padding
//                    rows); 32 and more: matmul_tiled, one tile of 64 rows up to 64, else tiles of
//                    128 (so every decode step of up to 128 rows reads each matrix once, and a
//                    prefill chunk once per 128 tokens); a tile's idle row slices of 16 do no
//                    arithmetic
//   MoE block        T = 1:   router_norm (norm + router), moe_up_swiglu (top-k inside), moe_down_acc
//                    T >= 2:  rmsnorm, the router (dense rule above), topk_softmax, then
//                    T <= 128: moe_route_parallel + moe_grouped_matvec ×2 (each used expert's
//                              weights read once per 16 of its rows; no padding rows)
//                    T > 128:  moe_route + moe_gemm ×2 (64-row tiles; idle 8-row slices of a
//                              partial tile do no arithmetic)
//                    and moe_gather. The grouped parts read topk's routing; the T = 1 matvec picks
//                    the experts from the router's logits itself, so its parts switch together.
//   head             R <= 16: unembed with the final norm folded in (1, 2, 4, 8 or 16 rows a
//                    workgroup, the smallest that holds R) and the sampler's greedy fast path;
//                    R > 16 (big decode batches, every prompt row's logits): rmsnorm of the rows,
//                    the dense unembedding (rule above: up to 128 rows read it once), the sampler
//                    without it
// Why these switch points: on a GPU a decode step is bound by the weight bytes it reads, so from
// two rows every product reads each matrix (and each used expert) once per step; the tiled GEMMs,
// which pay for whole tiles, start where their tiles fill.
import type { StepShape } from '../gpu/buffers.js';

export type When = (s: StepShape) => boolean;

/**
 * Steps of at most this many tokens run the fused attention-block matvec (dispatches and barriers,
 * not arithmetic, cost the time there). It is also that kernel's tokens per workgroup
 * (fused.ts FUSED_TOKENS), so the steps that run it read the QKV weights once.
 */
export const FUSED_MAX_TOKENS = 4;
/** Matmuls over at least this many rows (tokens, or logits rows) run the tiled GEMM. */
export const DENSE_TILED_MIN_ROWS = 32;
/** Matmuls over at least this many rows (and fewer than DENSE_TILED_MIN_ROWS) run the multi-row matvec. */
export const DENSE_ROWS_MIN_ROWS = 2;
/** Steps with at least this many tokens route with topk and run an expert-grouped MoE. */
export const MOE_ROUTED_MIN_TOKENS = 2;
/** Steps with more tokens than this run the grouped GEMM MoE (else the grouped matvec). */
export const MOE_SMALLM_MAX_TOKENS = 128;
/** Steps with more logits rows than this run the unfused head (norm + dense unembedding). */
export const HEAD_FUSED_MAX_ROWS = 16;
/** Logits rows per workgroup of the fused unembedding's variants. */
export const UNEMBED_ROW_VARIANTS = [1, 2, 4, 8, 16] as const;

/** The attention block's QKV: qkv_rope (norm, QKV, RoPE and KV write fused). */
export const fusedQkv: When = (s) => s.tokens <= FUSED_MAX_TOKENS;
/** The attention block's QKV: rmsnorm, the dense QKV matmul, rope_kv_write. */
export const unfusedQkv: When = (s) => !fusedQkv(s);

/** Rows per tile of matmul_tiled's variants, ascending (ops/dense.ts DENSE_TILES has their shapes). */
export const DENSE_TILE_ROWS = [64, 128] as const;

/** The matmul_tiled variant a product over `rows` (tiled) rows runs: the smallest tile that holds them, else the largest. */
export function denseTileRows(rows: number): (typeof DENSE_TILE_ROWS)[number] {
  return DENSE_TILE_ROWS.find((bm) => rows <= bm) ?? DENSE_TILE_ROWS.at(-1)!;
}

/** Which bf16 matmul kernel a product over `rows` rows runs. */
export type DenseKernel = 'matvec' | 'rows' | 'tiled';
export function denseKernel(rows: number): DenseKernel {
  if (rows >= DENSE_TILED_MIN_ROWS) return 'tiled';
  return rows >= DENSE_ROWS_MIN_ROWS ? 'rows' : 'matvec';
}

/** The MoE block of one token: router_norm and the per-slot matvec experts. */
export const moeMatvec: When = (s) => s.tokens < MOE_ROUTED_MIN_TOKENS;
/** The MoE block routed by topk: rmsnorm, router, topk_softmax, then one of the two below. */
export const moeRouted: When = (s) => !moeMatvec(s);
/** The expert-grouped matvec (moe_route_parallel, moe_grouped_matvec). */
export const moeSmallM: When = (s) => moeRouted(s) && s.tokens <= MOE_SMALLM_MAX_TOKENS;
/** The grouped GEMM (moe_route, moe_gemm). */
export const moeGrouped: When = (s) => s.tokens > MOE_SMALLM_MAX_TOKENS;

/** The head: rmsnorm + dense unembedding + the sampler's full pass (else the fused unembedding). */
export const headTiled: When = (s) => s.rows > HEAD_FUSED_MAX_ROWS;
export const headFused: When = (s) => !headTiled(s);

/**
 * The fused unembedding variant for `rows` logits rows: the smallest that holds them, else the
 * largest in z groups; none for a step without logits rows (a prompt chunk).
 */
export function unembedRowsPerGroup(rows: number): number | null {
  if (rows <= 0) return null;
  return UNEMBED_ROW_VARIANTS.find((rt) => rows <= rt) ?? UNEMBED_ROW_VARIANTS.at(-1)!;
}

// --- Subgroup-matrix (tensor core) GEMMs -------------------------------------------------------
// Where the load-time self-check (engine/sgmat-check.ts) passed, the f16 x f16 -> f32
// subgroup-matrix GEMMs (matmul_sgmat, moe_gemm_sgmat: 64-row x 128-column tiles) replace the f32
// tiled GEMMs for the same steps: they do ~4-8x the arithmetic rate there, so their 64-row tile
// pays off wherever the f32 tiles already did. The small-M kernels keep steps below that.

/** Scale bytes whose MXFP4 values are exact in f16 (lib/mxfp4_f16.wgsl): 2^-23 .. 2^13 with FP4. */
export const SGMAT_MXFP4_SCALES = { lo: 104, hi: 140 } as const;

/**
 * Whether a checkpoint's experts whose scale bytes span [lo, hi] may run the subgroup-matrix MoE
 * GEMM: only when every value decodes to f16 exactly (else the f32 grouped GEMM runs them).
 */
export function sgmatMoeScalesExact(lo: number, hi: number): boolean {
  return lo >= SGMAT_MXFP4_SCALES.lo && hi <= SGMAT_MXFP4_SCALES.hi;
}

/** The dense product over `rows` rows runs matmul_sgmat instead of matmul_tiled (when usable). */
export function sgmatDense(rows: number, usable: boolean): boolean {
  return usable && denseKernel(rows) === 'tiled';
}

/** The grouped MoE runs moe_gemm_sgmat (64-row tiles) instead of moe_gemm (when usable). */
export function sgmatMoe(s: StepShape, usable: boolean): boolean {
  return usable && moeGrouped(s);
}

/** Why an adapter cannot run the subgroup-matrix kernels, or null when it can (before the self-check). */
export function sgmatUnsupported(g: {
  subgroupMatrix: boolean;
  config: { M: number; N: number; K: number } | null;
  subgroupMinSize: number;
  subgroupMaxSize: number;
}): string | null {
  if (!g.subgroupMatrix) return 'the adapter has no chromium-experimental-subgroup-matrix with f16 -> f32';
  if (!g.config) return 'no f16 x f16 -> f32 subgroup-matrix config whose M, N, K divide 32';
  // lib/sgmat.wgsl finds a warp as lid / SGW: every subgroup must have the same, known size
  if (g.subgroupMinSize !== g.subgroupMaxSize) return `subgroup size varies (${g.subgroupMinSize}..${g.subgroupMaxSize})`;
  return null;
}
