// Factories for the attention block's middle: RoPE + KV-cache write, attention over the cache
// (sinks, GQA, sliding window; split-K "flash-decoding" for few tokens over many keys) and the
// split combine. See shaders/lib/attention_plan.wgsl for the row-block and split layout.
//
// Per layer, in this order after the QKV matmul:
//   ropeKvWriteOp   rotates q in place in `qkv`, writes rotated k and v at slot pos % cap
//   attentionOps    [attention] on sliding layers, [attention, attention_combine] on full ones
//                   (the combine is one idle workgroup when a step needs only one split)
import { bindGroup, grid, storageBuffer, uniformBuffer, Params, type Dispatch } from '../../gpu/buffers.js';
import type { ModelConfig } from '../../model/config.js';
import type { OpContext } from './context.js';

export type AttentionConfig = Pick<ModelConfig, 'numHeads' | 'numKvHeads' | 'headDim' | 'slidingWindow'>;

/** (token, query head) rows per attention workgroup; all share one kv head. */
export const ATTN_ROWS = 8;
/** Keys per tile (and the split granularity). */
export const ATTN_TILE = 64;
/** Threads per row in the attention kernel (shader const LANES). */
const ATTN_LANES = 8;
const ROPE_WG = 64;

/**
 * KV-cache slots per kv head for one layer. Full layers hold the whole context (slot = position);
 * sliding layers a ring of window − 1 + maxChunk slots, so a chunk never overwrites keys its own
 * queries still need (fewer when the context is shorter than that).
 */
export function kvCapacity(cfg: Pick<ModelConfig, 'slidingWindow'>, sliding: boolean, contextLength: number, maxChunk: number): number {
  if (!sliding) return contextLength;
  return Math.min(contextLength, cfg.slidingWindow - 1 + maxChunk);
}

export interface RopeKvWriteArgs {
  /** f32 [T][(nq + 2 nkv) d]; q heads are rotated in place. */
  qkv: GPUBuffer;
  /** ropeTable(cfg, context): f32 [context][d/2][2]. */
  rope: GPUBuffer;
  /** f32 [nkv][cap][d] each. */
  kcache: GPUBuffer;
  vcache: GPUBuffer;
  cfg: Pick<ModelConfig, 'numHeads' | 'numKvHeads' | 'headDim'>;
  cap: number;
  label: string;
}

/** RoPE on q (in place) and k, and the write of k and v into the layer's cache. One dispatch. */
export function ropeKvWriteOp(ctx: OpContext, a: RopeKvWriteArgs): Dispatch {
  const { numHeads: nq, numKvHeads: nkv, headDim: d } = a.cfg;
  if (d % 2 !== 0) throw new Error(`${a.label}: head_dim ${d} must be even`);
  const pipeline = ctx.shaders.pipeline({ shader: 'rope_kv_write', defines: { WG: ROPE_WG } });
  const params = uniformBuffer(ctx.gpu, new Params().u32(nq).u32(nkv).u32(d).u32(a.cap), `${a.label}.params`);
  const perToken = (nq + 2 * nkv) * (d / 2);
  return {
    label: a.label,
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, [ctx.step, params, a.qkv, a.rope, a.kcache, a.vcache], a.label),
    groups: (s) => grid(Math.ceil((s.tokens * perToken) / ROPE_WG)),
  };
}

export interface AttentionTuning {
  /** Workgroups the split plan aims for (≈ 2 per SM on a big GPU). Default 256. */
  targetWorkgroups?: number;
  /** Most splits per row block on full layers. Default 64. Sliding layers always use 1. */
  maxSplits?: number;
}

interface SplitPlan {
  nq: number;
  nkv: number;
  group: number;
  target: number;
  maxSplits: number;
}

function splitPlan(cfg: AttentionConfig, sliding: boolean, t: AttentionTuning = {}): SplitPlan {
  return {
    nq: cfg.numHeads,
    nkv: cfg.numKvHeads,
    group: cfg.numHeads / cfg.numKvHeads,
    target: t.targetWorkgroups ?? 256,
    maxSplits: sliding ? 1 : (t.maxSplits ?? 64),
  };
}

function blocksPerKvHead(p: SplitPlan, tokens: number): number {
  return Math.ceil((tokens * p.group) / ATTN_ROWS);
}

/** Splits per row block for a forward of `tokens` tokens (mirrors att_splits in WGSL). */
export function attentionSplits(cfg: AttentionConfig, sliding: boolean, tokens: number, tuning?: AttentionTuning): number {
  return splitsOf(splitPlan(cfg, sliding, tuning), tokens);
}

function splitsOf(p: SplitPlan, tokens: number): number {
  const wgs = p.nkv * blocksPerKvHead(p, tokens);
  return Math.min(Math.max(Math.ceil(p.target / wgs), 1), p.maxSplits);
}

/** Largest T·S over the T that use more than one split: the partial buffers' row count / nq. */
function maxTokenSplits(p: SplitPlan): number {
  let most = 0;
  for (let t = 1; splitsOf(p, t) > 1; t++) most = Math.max(most, t * splitsOf(p, t));
  return most;
}

/** Split partials, shareable by every layer of a forward (layers run one after another). */
export interface AttentionScratch {
  /** f32 [rows][d]: unnormalised partial outputs, rows = (t·nq + h)·S + s. */
  partO: GPUBuffer;
  /** f32 [rows][2]: (m, l) per partial. */
  partML: GPUBuffer;
  rows: number;
  headDim: number;
}

/** Bytes of scratch the attention of this config needs (both partial buffers). */
export function attentionScratchBytes(cfg: AttentionConfig, tuning?: AttentionTuning): number {
  const rows = Math.max(1, cfg.numHeads * maxTokenSplits(splitPlan(cfg, false, tuning)));
  return rows * (cfg.headDim + 2) * 4;
}

const scratchByCtx = new WeakMap<OpContext, AttentionScratch>();

/**
 * The partial buffers for attentionOps. Without `shared`, one per OpContext is kept and grown on
 * demand, so every layer built on the same context shares it.
 */
export function attentionScratch(ctx: OpContext, cfg: AttentionConfig, tuning?: AttentionTuning): AttentionScratch {
  const rows = Math.max(1, cfg.numHeads * maxTokenSplits(splitPlan(cfg, false, tuning)));
  const have = scratchByCtx.get(ctx);
  if (have && have.rows >= rows && have.headDim === cfg.headDim) return have;
  const s: AttentionScratch = {
    partO: storageBuffer(ctx.gpu, rows * cfg.headDim * 4, 'attn.part_o'),
    partML: storageBuffer(ctx.gpu, rows * 2 * 4, 'attn.part_ml'),
    rows,
    headDim: cfg.headDim,
  };
  scratchByCtx.set(ctx, s);
  return s;
}

export interface AttentionArgs {
  /** f32 [T][(nq + 2 nkv) d], q already rotated by ropeKvWriteOp. */
  qkv: GPUBuffer;
  /** f32 [nkv][cap][d], this chunk's keys/values already written. */
  kcache: GPUBuffer;
  vcache: GPUBuffer;
  /** f32 [nq] sink logits (not scaled). */
  sinks: GPUBuffer;
  /** f32 [T][nq d] output, heads concatenated. */
  attn: GPUBuffer;
  cfg: AttentionConfig;
  sliding: boolean;
  cap: number;
  /**
   * Largest chunk (informational; the kernels need nothing from it). `cap` must come from
   * kvCapacity(cfg, sliding, context, maxChunk): a sliding ring of window − 1 + maxChunk slots, or
   * the whole context when that is smaller.
   */
  maxChunk?: number;
  /** Split partials; default: attentionScratch(ctx, cfg, tuning). */
  scratch?: AttentionScratch;
  tuning?: AttentionTuning;
  label: string;
}

/** Attention for one layer: 1 dispatch on sliding layers, 2 on full ones (attention + combine). */
export function attentionOps(ctx: OpContext, a: AttentionArgs): Dispatch[] {
  const { numHeads: nq, numKvHeads: nkv, headDim: d, slidingWindow: window } = a.cfg;
  if (nq % nkv !== 0) throw new Error(`${a.label}: ${nq} query heads are not a multiple of ${nkv} kv heads`);
  if (d % (4 * ATTN_LANES) !== 0 || d > 256) throw new Error(`${a.label}: head_dim ${d} must be a multiple of 32, at most 256`);
  const plan = splitPlan(a.cfg, a.sliding, a.tuning);
  const scratch = a.scratch ?? attentionScratch(ctx, a.cfg, a.tuning);
  const needRows = nq * maxTokenSplits(plan);
  if (scratch.rows < needRows || scratch.headDim !== d) {
    throw new Error(`${a.label}: attention scratch holds ${scratch.rows} rows of ${scratch.headDim}, needs ${needRows} of ${d}`);
  }
  const defines = { D: d, ROWS: ATTN_ROWS, TILE: ATTN_TILE };
  const params = uniformBuffer(
    ctx.gpu,
    new Params()
      .u32(nq)
      .u32(nkv)
      .u32(a.cap)
      .u32(a.sliding ? 1 : 0)
      .u32(window)
      .u32((nq + 2 * nkv) * d)
      .u32(plan.target)
      .u32(plan.maxSplits)
      .f32(1 / Math.sqrt(d)),
    `${a.label}.params`,
  );
  const attn = ctx.shaders.pipeline({ shader: 'attention', defines });
  const ops: Dispatch[] = [
    {
      label: a.label,
      pipeline: attn,
      bindGroup: bindGroup(
        ctx.gpu,
        attn,
        [ctx.step, params, a.qkv, a.kcache, a.vcache, a.sinks, a.attn, scratch.partO, scratch.partML],
        a.label,
      ),
      groups: (s) => grid(nkv * blocksPerKvHead(plan, s.tokens), 1, splitsOf(plan, s.tokens)),
    },
  ];
  if (plan.maxSplits > 1) {
    const combine = ctx.shaders.pipeline({ shader: 'attention_combine', defines });
    const rowsPerGroup = 64 / (d / 4);
    ops.push({
      label: `${a.label}.combine`,
      pipeline: combine,
      bindGroup: bindGroup(ctx.gpu, combine, [ctx.step, params, scratch.partO, scratch.partML, a.attn], `${a.label}.combine`),
      // One idle workgroup when the step needs a single split (Dawn warns about empty dispatches).
      groups: (s) => (splitsOf(plan, s.tokens) > 1 ? grid(Math.ceil((s.tokens * nq) / rowsPerGroup)) : [1, 1, 1]),
    });
  }
  return ops;
}
