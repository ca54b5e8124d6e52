// The bf16 matmul of any step: the one-row matvec (./basic.ts matmulOp), the multi-row matvec
// (./dense-rows.ts) or the tiled GEMM (matmul_tiled), as dispatch-policy.ts denseKernel says.
import { bindGroup, type Dispatch, type StepShape } from '../../gpu/buffers.js';
import { KERNEL_PARAMS } from '../../gpu/kernel-params.js';
import { paramsBuffer } from '../../gpu/params.js';
import { denseKernel, type DenseKernel } from '../dispatch-policy.js';
import type { OpContext } from './context.js';
import { matmulOp, type MatmulArgs } from './basic.js';
import { denseRowsOps } from './dense-rows.js';
import { sgmatDenseOp, sgmatOf } from './sgmat.js';
import { sgmatDense } from '../dispatch-policy.js';

/** Tile of matmul_tiled (lib/gemm.wgsl). */
export const DENSE_TILE = { BM: 32, BN: 64, BK: 32, TM: 4, TN: 8 } as const;

/**
 * Every variant's dispatches for one product; each step runs one of them. The tiled GEMM reads W
 * once per BM rows (prefill, big batches).
 * `kernel` pins the choice by rows (tests).
 */
export function denseOps(ctx: OpContext, a: MatmulArgs & { kernel?: (rows: number) => DenseKernel }): Dispatch[] {
  const pick = a.kernel ?? denseKernel;
  const rowsOf = (s: StepShape) => (a.outRows ? s.rows : s.tokens);
  // without full K slices of the tile, the tiled rows fall to the multi-row matvec
  const canTile = a.k % DENSE_TILE.BK === 0;
  const kernelOf = (s: StepShape): DenseKernel => {
    const k = pick(rowsOf(s));
    return k === 'tiled' && !canTile ? 'rows' : k;
  };
  const is = (k: DenseKernel) => (s: StepShape) => kernelOf(s) === k;
  const small = matmulOp(ctx, a);
  const rows = denseRowsOps(ctx, { ...a, minRows: 1 }).map((d) => ({ ...d, when: is('rows') }));
  const ops: Dispatch[] = [{ ...small, when: is('matvec') }, ...rows];
  if (!canTile) return ops;
  const flags = [a.bias ? 'BIAS' : '', a.accumulate ? 'ACCUMULATE' : '', a.outRows ? 'OUT_ROWS' : ''].filter(Boolean);
  const pipeline = ctx.shaders.pipeline({ shader: 'matmul_tiled', defines: { ...DENSE_TILE }, flags });
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.matmul_tiled, { k: a.k, n: a.n, n0: a.n0 ?? 0, ny: a.ny ?? a.n }, `${a.label}.tiled.params`);
  const bufs = [ctx.step, params, a.x, a.w, ...(a.bias ? [a.bias] : []), a.y];
  const tiles = (s: StepShape) => [Math.ceil(rowsOf(s) / DENSE_TILE.BM), Math.ceil(a.n / DENSE_TILE.BN)] as const;
  // where the load-time self-check passed, the subgroup-matrix GEMM takes the tiled steps
  const sg = sgmatOf(ctx);
  const tiled = (s: StepShape) => is('tiled')(s) && !sgmatDense(rowsOf(s), sg !== null);
  if (sg) ops.push(sgmatDenseOp(ctx, a, sg.shape, (s) => is('tiled')(s) && sgmatDense(rowsOf(s), true)));
  ops.push({
    label: `${a.label}.tiled`,
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, bufs, `${a.label}.tiled`),
    // W once per tile of BM tokens; whole tiles of arithmetic
    weightBytes: (s) => (2 * a.k * a.n + (a.bias ? 4 * a.n : 0)) * tiles(s)[0],
    macs: (s) => tiles(s)[0] * DENSE_TILE.BM * tiles(s)[1] * DENSE_TILE.BN * a.k,
    when: tiled,
    groups: (s) => [tiles(s)[0], tiles(s)[1], 1],
  });
  return ops;
}
