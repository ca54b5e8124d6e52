// The decode path's fused kernels (steps of a few tokens, where dispatches and barriers, not
// arithmetic, cost the time): RMSNorm folded into the matvec that follows it, RoPE and the KV write
// in the QKV epilogue, the router's top-k in mlp1 (moeUpOp's topk option), the final norm and the
// greedy argmax (or the Gumbel-max draw of temperature sampling) in the unembedding. Each workgroup recomputes the norm of its tokens' rows (a few
// KB from cache) instead of a separate dispatch writing them.
import { bindGroup, grid, type Dispatch, type StepShape } from '../../gpu/buffers.js';
import { FUSED_MAX_TOKENS, UNEMBED_ROW_VARIANTS, unembedRowsPerGroup } from '../dispatch-policy.js';
import { KERNEL_PARAMS } from '../../gpu/kernel-params.js';
import { paramsBuffer } from '../../gpu/params.js';
import type { ModelConfig } from '../../model/config.js';
import type { KvLayout } from './attention.js';
import type { OpContext } from './context.js';
import type { Shard } from '../weights.js';

/** Tokens per workgroup in the fused matvecs (accumulators per lane: rows × tokens): all of a step's that runs them. */
export const FUSED_TOKENS = FUSED_MAX_TOKENS;
/** Vocabulary rows per team in the fused unembedding. */
const UNEMBED_RPT = 4;
/** Vocabulary rows per team when the step has one logits row: more loads in flight per lane. */
const UNEMBED_ONE_ROW_RPT = 16;
/** Vocabulary rows per team for 16 logits rows: 32 accumulators a lane, as for 8 rows. */
const UNEMBED_16_ROWS_RPT = 2;
const NTEAMS = 8;

/** Lanes per team: within the smallest subgroup (a barrier-free butterfly), else 8 in workgroup memory. */
export function fusedTeam(ctx: OpContext): number {
  if (!ctx.shaders.useSubgroups) return 8;
  return Math.min(32, 2 ** Math.floor(Math.log2(Math.max(1, ctx.gpu.subgroupMinSize))));
}

export interface QkvRopeArgs {
  toks: GPUBuffer;
  /** f32 [T][H] residual stream (normalised here). */
  x: GPUBuffer;
  normScale: GPUBuffer;
  /** bf16 [(nq + 2 nkv) d][H] and f32 bias. */
  w: GPUBuffer;
  bias: GPUBuffer;
  rope: GPUBuffer;
  table: GPUBuffer;
  kpool: GPUBuffer;
  vpool: GPUBuffer;
  /** f32 [T][(nq + 2 nkv) d]: the rotated q heads land here (k and v go to the cache). */
  qkv: GPUBuffer;
  cfg: Pick<ModelConfig, 'numHeads' | 'numKvHeads' | 'headDim' | 'hiddenSize' | 'rmsNormEps'>;
  kv: KvLayout;
  label: string;
}

/** norm → QKV + bias → RoPE → KV write, one dispatch: a workgroup per head and FUSED_TOKENS tokens. */
export function qkvRopeOp(ctx: OpContext, a: QkvRopeArgs): Dispatch {
  const { numHeads: nq, numKvHeads: nkv, headDim: d, hiddenSize: H } = a.cfg;
  if (H % 8 !== 0 || d % NTEAMS !== 0) throw new Error(`${a.label}: hidden ${H} must be a multiple of 8 and head_dim ${d} of ${NTEAMS}`);
  const pipeline = ctx.shaders.pipeline({
    shader: 'qkv_rope',
    defines: { TEAM: fusedTeam(ctx), TT: FUSED_TOKENS, D: d, PAGE: a.kv.pageSize, H },
    flags: a.kv.f32 ? ['KV_F32'] : [],
  });
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.qkv_rope, { nq, nkv, max_blocks: a.kv.maxBlocks, eps: a.cfg.rmsNormEps }, `${a.label}.params`);
  const bufs = [ctx.step, params, a.toks, a.x, a.normScale, a.w, a.bias, a.rope, a.table, a.kpool, a.vpool, a.qkv];
  return {
    label: a.label,
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, bufs, a.label),
    groups: (s) => [nq + 2 * nkv, 1, Math.ceil(s.tokens / FUSED_TOKENS)],
    weightBytes: (s) => ((nq + 2 * nkv) * d * (2 * H + 4) + 4 * H) * Math.ceil(s.tokens / FUSED_TOKENS),
    macs: (s) => s.tokens * (nq + 2 * nkv) * d * H,
  };
}

export interface RouterNormArgs {
  x: GPUBuffer;
  normScale: GPUBuffer;
  /** bf16 [E][H] and f32 bias. */
  w: GPUBuffer;
  bias: GPUBuffer;
  /** f32 [T][E] out. */
  logits: GPUBuffer;
  /** f32 [T][H] out: the normalised x, for mlp1. */
  xn: GPUBuffer;
  cfg: Pick<ModelConfig, 'numExperts' | 'hiddenSize' | 'rmsNormEps'>;
  label: string;
}

/** norm → router logits (+ bias), writing the normalised x for mlp1 on the side. One dispatch. */
export function routerNormOp(ctx: OpContext, a: RouterNormArgs): Dispatch {
  const { numExperts: E, hiddenSize: H } = a.cfg;
  const pipeline = ctx.shaders.pipeline({ shader: 'router_norm', defines: { TEAM: fusedTeam(ctx), TT: FUSED_TOKENS, H } });
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.router_norm, { e: E, eps: a.cfg.rmsNormEps }, `${a.label}.params`);
  return {
    label: a.label,
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, [ctx.step, params, a.x, a.normScale, a.w, a.bias, a.logits, a.xn], a.label),
    groups: (s) => [Math.ceil(E / NTEAMS), 1, Math.ceil(s.tokens / FUSED_TOKENS)],
    weightBytes: (s) => (E * (2 * H + 4) + 4 * H) * Math.ceil(s.tokens / FUSED_TOKENS),
    macs: (s) => s.tokens * E * H,
  };
}

export interface UnembedArgs {
  /** u32 [R]: the token of each logits row. */
  rows: GPUBuffer;
  x: GPUBuffer;
  normScale: GPUBuffer;
  shards: readonly Shard[];
  /** f32 [R][V] out. */
  logits: GPUBuffer;
  /**
   * The pick per logits row (atomic max): the greedy argmax, or for a row whose sample row asks
   * for temperature sampling over the whole softmax its Gumbel-max draw; with `samples` (the
   * step's SampleRow settings, StepInputs.sampling). Absent without atomic-vec2u-min-max.
   */
  argmax?: { picks: GPUBuffer; samples: GPUBuffer };
  cfg: Pick<ModelConfig, 'vocabSize' | 'hiddenSize' | 'rmsNormEps'>;
  label: string;
}

/**
 * Final norm → unembedding (→ greedy argmax or Gumbel-max draw), one dispatch per shard of the unembedding and
 * variant: a step runs the variant sized for its logits rows (dispatch-policy.ts
 * unembedRowsPerGroup), so a single decoding sequence does not pay eight rows' arithmetic.
 */
export function unembedOps(ctx: OpContext, a: UnembedArgs): Dispatch[] {
  const { vocabSize: V, hiddenSize: H } = a.cfg;
  const variants = UNEMBED_ROW_VARIANTS.map((rt) => ({ rt, rpt: rt === 1 ? UNEMBED_ONE_ROW_RPT : rt === 16 ? UNEMBED_16_ROWS_RPT : UNEMBED_RPT, when: (s: StepShape) => unembedRowsPerGroup(s.rows) === rt }));
  return variants.flatMap(({ rt, rpt, when }) => {
    const perGroup = NTEAMS * rpt;
    const pipeline = ctx.shaders.pipeline({
      shader: 'unembed',
      defines: { TEAM: fusedTeam(ctx), RPT: rpt, RT: rt, H },
      flags: a.argmax ? ['ARGMAX', 'ATOMIC_VEC2U'] : [],
    });
    return a.shards.map((sh, i): Dispatch => {
      const label = a.shards.length > 1 ? `${a.label}.${i}` : a.label;
      const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.unembed, { n: sh.count, n0: sh.first, ny: V, eps: a.cfg.rmsNormEps }, `${label}.params`);
      const bufs = [ctx.step, params, a.rows, a.x, a.normScale, sh.buffer, a.logits, ...(a.argmax ? [a.argmax.picks, a.argmax.samples] : [])];
      const g = grid(Math.ceil(sh.count / perGroup));
      return {
        label,
        pipeline,
        bindGroup: bindGroup(ctx.gpu, pipeline, bufs, label),
        when,
        groups: (s) => [g[0], g[1], Math.ceil(s.rows / rt)],
        weightBytes: (s) => (sh.count * 2 * H + (i === 0 ? 4 * H : 0)) * Math.ceil(s.rows / rt),
        // every workgroup computes all rt rows (the last row repeats in a partial group)
        macs: (s) => Math.ceil(s.rows / rt) * rt * sh.count * H,
      };
    });
  });
}
