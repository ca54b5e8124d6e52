// The bf16 matmul for steps of a few rows (qkv, attn_out, router; 2 to ~128 rows): multi-row
// matvec variants (matmul_rows_bf16) holding 2, 4, 8, 16 or 32 rows per token tile, so a step's
// rows share each weight load; a step runs the smallest variant that holds its rows in one tile
// (more than 32 rows: tiles of 32). Same arguments as matmulOp (./basic.ts).
import { bindGroup, grid, type Dispatch, type StepShape } from '../../gpu/buffers.js';
import { KERNEL_PARAMS } from '../../gpu/kernel-params.js';
import { paramsBuffer } from '../../gpu/params.js';
import type { OpContext } from './context.js';
import type { MatmulArgs } from './basic.js';

/** Rows per token tile of the variants, ascending. */
export const DENSE_ROW_VARIANTS = [2, 4, 8, 16, 32] as const;

/** Lanes per output row: 8 (within the smallest subgroup when subgroups are used). */
function rowTeam(ctx: OpContext, k: number): number {
  let t = ctx.shaders.useSubgroups ? Math.min(8, 2 ** Math.floor(Math.log2(Math.max(1, ctx.gpu.subgroupMinSize)))) : 8;
  // short rows: about 8 vectors per lane at least
  while (t > 1 && t * 8 > k / 8) t /= 2;
  return t;
}

export interface DenseRowsArgs extends MatmulArgs {
  /** Steps of fewer rows (or more than maxRows) skip these dispatches. Defaults 2 and Infinity. */
  minRows?: number;
  maxRows?: number;
}

/**
 * One dispatch per variant; each step runs one of them (the smallest RT >= its rows, or RT = 32
 * in tiles). weightBytes: W (and the bias) once per token tile; macs: rows x n x k (idle rows of a
 * tile are skipped).
 */
export function denseRowsOps(ctx: OpContext, a: DenseRowsArgs): Dispatch[] {
  if (a.k % 8 !== 0) throw new Error(`${a.label}: input size ${a.k} is not a multiple of 8`);
  const min = a.minRows ?? 2;
  const max = a.maxRows ?? Infinity;
  const rowsOf = (s: StepShape) => (a.outRows ? s.rows : s.tokens);
  const flags = [a.bias ? 'BIAS' : '', a.accumulate ? 'ACCUMULATE' : '', a.outRows ? 'OUT_ROWS' : ''].filter(Boolean);
  const team = rowTeam(ctx, a.k);
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.matmul_rows_bf16, { k: a.k, n: a.n, n0: a.n0 ?? 0, ny: a.ny ?? a.n }, `${a.label}.rows.params`);
  const bytes = 2 * a.k * a.n + (a.bias ? 4 * a.n : 0);
  return DENSE_ROW_VARIANTS.map((rt, i): Dispatch => {
    // the portable reduction keeps WG * RT partial sums in workgroup memory (at most 16 KiB)
    const wg = Math.min(ctx.wg, 4096 / rt, 256);
    const pipeline = ctx.shaders.pipeline({ shader: 'matmul_rows_bf16', defines: { WG: wg, TEAM: team, RT: rt }, flags });
    const lo = i === 0 ? 0 : DENSE_ROW_VARIANTS[i - 1]!;
    const last = i === DENSE_ROW_VARIANTS.length - 1;
    const mine = (rows: number) => rows >= min && rows <= max && rows > lo && (rows <= rt || last);
    const rowGroups = Math.ceil(a.n / (wg / team));
    const label = `${a.label}.rows${rt}`;
    return {
      label,
      pipeline,
      bindGroup: bindGroup(ctx.gpu, pipeline, [ctx.step, params, a.x, a.w, ...(a.bias ? [a.bias] : []), a.y], label),
      groups: (s) => (mine(rowsOf(s)) ? grid(rowGroups, 1, Math.ceil(rowsOf(s) / rt)) : null),
      weightBytes: (s) => (mine(rowsOf(s)) ? bytes * Math.ceil(rowsOf(s) / rt) : 0),
      macs: (s) => (mine(rowsOf(s)) ? rowsOf(s) * a.n * a.k : 0),
    };
  });
}
