// Factories for the dense kernels: embedding gather, RMSNorm and the one-row bf16 matmul (./dense.ts
// picks among the matmul variants).
import { bindGroup, grid, type Dispatch, type StepShape } from '../../gpu/buffers.js';
import { KERNEL_PARAMS } from '../../gpu/kernel-params.js';
import { paramsBuffer } from '../../gpu/params.js';
import type { OpContext } from './context.js';
import type { Shard } from '../weights.js';

/**
 * x[t] = embedding row of token t (its literal id, or its slot's last sampled id); one dispatch per
 * shard of the table.
 */
export function embedOps(
  ctx: OpContext,
  a: { toks: GPUBuffer; lastIds: GPUBuffer; table: readonly Shard[]; x: GPUBuffer; hidden: number; argmax?: GPUBuffer },
): Dispatch[] {
  return a.table.map((sh, i) => {
    // the first shard's dispatch also clears the step's greedy picks (unembed.wgsl ARGMAX)
    const reset = i === 0 && a.argmax;
    const pipeline = ctx.shaders.pipeline({ shader: 'embed', defines: { WG: 64, H: a.hidden }, flags: reset ? ['ARGMAX'] : [] });
    const label = a.table.length > 1 ? `embed.${i}` : 'embed';
    const range = paramsBuffer(ctx.gpu, KERNEL_PARAMS.embed, { first: sh.first, count: sh.count }, `${label}.shard`);
    return {
      label,
      pipeline,
      bindGroup: bindGroup(ctx.gpu, pipeline, [ctx.step, a.toks, a.lastIds, sh.buffer, a.x, range, ...(reset ? [a.argmax!] : [])], label),
      groups: (s) => grid(s.tokens),
      // a row per token, from whichever shard holds it: counted once, by the first shard
      weightBytes: (s) => (i === 0 ? s.tokens * 2 * a.hidden : 0),
    };
  });
}

/** RMSNorm of every token's row, or with `rows` (the final norm) of the step's logits rows only. */
export function rmsnormOp(
  ctx: OpContext,
  a: { x: GPUBuffer; scale: GPUBuffer; y: GPUBuffer; hidden: number; eps: number; rows?: GPUBuffer; label: string },
): Dispatch {
  const pipeline = ctx.shaders.pipeline({
    shader: 'rmsnorm',
    defines: { WG: Math.min(ctx.wg, 128), REDUCE_N: 1, H: a.hidden },
    flags: a.rows ? ['OUT_ROWS'] : [],
  });
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.rmsnorm, { eps: a.eps }, `${a.label}.params`);
  const bufs = [ctx.step, params, a.x, a.scale, a.y, ...(a.rows ? [a.rows] : [])];
  return {
    label: a.label,
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, bufs, a.label),
    weightBytes: () => 4 * a.hidden,
    groups: (s) => (a.rows ? (s.rows ? grid(s.rows) : null) : grid(s.tokens)),
  };
}

export interface MatmulArgs {
  x: GPUBuffer;
  /** bf16 [n][k] */
  w: GPUBuffer;
  bias?: GPUBuffer;
  y: GPUBuffer;
  k: number;
  n: number;
  /** y += x W^T (+ bias): the residual add. */
  accumulate?: boolean;
  /** x holds the step's logits rows (unembedding) rather than all its tokens. */
  outRows?: boolean;
  /** W is rows [n0, n0 + n) of a matrix of `ny` rows (a shard): y has ny columns. */
  n0?: number;
  ny?: number;
  label: string;
}

// Tokens per workgroup: TT tokens share every weight load.
const TT = 8;

/**
 * Lanes per output row: at most 32, and few enough that each lane loads about 8 vectors, so short
 * rows (tiny models) do not spend their time in reductions.
 */
export function teamSize(vectorsPerRow: number): number {
  let t = 1;
  while (t * 2 <= Math.min(32, vectorsPerRow / 8)) t *= 2;
  return t;
}

export function matmulOp(ctx: OpContext, a: MatmulArgs): Dispatch {
  if (a.k % 8 !== 0) throw new Error(`${a.label}: input size ${a.k} is not a multiple of 8`);
  const flags = [a.bias ? 'BIAS' : '', a.accumulate ? 'ACCUMULATE' : '', a.outRows ? 'OUT_ROWS' : ''].filter(Boolean);
  const pipeline = ctx.shaders.pipeline({
    shader: 'matmul_bf16',
    defines: { WG: Math.min(ctx.wg, 128), TEAM: teamSize(a.k / 8), TT },
    flags,
  });
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.matmul_bf16, { k: a.k, n: a.n, n0: a.n0 ?? 0, ny: a.ny ?? a.n }, `${a.label}.params`);
  const bufs = [ctx.step, params, a.x, a.w, ...(a.bias ? [a.bias] : []), a.y];
  const rowGroups = Math.ceil(a.n / (Math.min(ctx.wg, 128) / teamSize(a.k / 8)));
  const bytes = 2 * a.k * a.n + (a.bias ? 4 * a.n : 0);
  return {
    label: a.label,
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, bufs, a.label),
    // W once per tile of TT tokens
    weightBytes: (s) => bytes * Math.ceil((a.outRows ? s.rows : s.tokens) / TT),
    macs: (s) => (a.outRows ? s.rows : s.tokens) * a.n * a.k,
    groups: (s) => {
      const rows = a.outRows ? s.rows : s.tokens;
      return rows ? grid(rowGroups, 1, Math.ceil(rows / TT)) : null;
    },
  };
}
