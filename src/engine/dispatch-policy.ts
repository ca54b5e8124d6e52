// Which variant of each kernel a step runs: the one home of every threshold. forward.ts builds ONE
// program that holds every variant of every kernel, and each variant's dispatch carries its
// predicate from this file (Dispatch.when); a step encodes the dispatches whose predicate holds
// for its StepShape and skips the rest. So the choice is made per kernel, from the step's typed
// shape, not by picking one of two whole programs: a new small-M variant is one more dispatch
// with one more predicate here, and two kernels of a block may switch at different sizes as long
// as the buffers between them agree (noted below where they must switch together).
//
// What a step of T tokens and R logits rows runs today:
//   attention block  T < 8:  qkv_rope (norm + QKV + RoPE + KV write in one matvec)
//                    T >= 8: rmsnorm, QKV, rope_kv_write
//                    then the attention kernels the host plan asks for (decode items, prefill
//                    items, combine: AttentionPlan) and the out projection
//   dense matmuls    rows < 16: matmul_bf16 (W streamed per 8 tokens); rows >= 16: matmul_tiled
//   MoE block        T < 8:  router_norm (norm + router), moe_up_swiglu (top-k inside), moe_down_acc
//                    T >= 8: rmsnorm, router, topk_softmax, moe_route, moe_gemm ×2, moe_gather
//                    (its four parts switch together: the matvec mlp1 picks the experts from the
//                    router's logits, the grouped path reads topk's routing)
//   head             R < 16: unembed with the final norm folded in (1, 2, 4 or 8 rows a workgroup,
//                    the smallest that holds R) and the sampler's greedy fast path;
//                    R >= 16 (every prompt row's logits): rmsnorm of the rows, the dense unembedding
//                    (rule above), the sampler without it
import type { StepShape } from '../gpu/buffers.js';

export type When = (s: StepShape) => boolean;

/** Steps of fewer tokens run the fused blocks (dispatches and barriers, not arithmetic, cost the time there). */
export const FUSED_MAX_TOKENS = 8;
/** Matmuls over at least this many rows (tokens, or logits rows) run the tiled GEMM. */
export const DENSE_TILED_MIN_ROWS = 16;
/** Steps with at least this many tokens run the expert-grouped MoE. */
export const MOE_GROUPED_MIN_TOKENS = FUSED_MAX_TOKENS;
/** Steps with at least this many logits rows run the unfused head (norm + dense unembedding). */
export const HEAD_TILED_ROWS = 16;
/** Logits rows per workgroup of the fused unembedding's variants. */
export const UNEMBED_ROW_VARIANTS = [1, 2, 4, 8] as const;

/** The attention block's QKV: qkv_rope (norm, QKV, RoPE and KV write fused). */
export const fusedQkv: When = (s) => s.tokens < FUSED_MAX_TOKENS;
/** The attention block's QKV: rmsnorm, the dense QKV matmul, rope_kv_write. */
export const unfusedQkv: When = (s) => !fusedQkv(s);

/** A dense matmul over `rows` rows runs matmul_tiled (else matmul_bf16). */
export const denseTiled = (rows: number): boolean => rows >= DENSE_TILED_MIN_ROWS;

/** The MoE block: the grouped GEMMs (else router_norm and the matvec experts). */
export const moeGrouped: When = (s) => s.tokens >= MOE_GROUPED_MIN_TOKENS;
export const moeMatvec: When = (s) => !moeGrouped(s);

/** The head: rmsnorm + dense unembedding + the sampler's full pass (else the fused unembedding). */
export const headTiled: When = (s) => s.rows >= HEAD_TILED_ROWS;
export const headFused: When = (s) => !headTiled(s);

/**
 * The fused unembedding variant for `rows` logits rows: the smallest that holds them, else the
 * largest in z groups; none for a step without logits rows (a prompt chunk).
 */
export function unembedRowsPerGroup(rows: number): number | null {
  if (rows <= 0) return null;
  return UNEMBED_ROW_VARIANTS.find((rt) => rows <= rt) ?? UNEMBED_ROW_VARIANTS.at(-1)!;
}
