// The bf16 matmul of any step: the one-row matvec (./basic.ts matmulOp), the multi-row matvec
// (./dense-rows.ts) or the tiled GEMM (matmul_tiled, a tile of 64 or 128 rows), as
// dispatch-policy.ts denseKernel and denseTileRows say.
import { bindGroup, type Dispatch, type StepShape } from '../../gpu/buffers.js';
import { KERNEL_PARAMS } from '../../gpu/kernel-params.js';
import { paramsBuffer } from '../../gpu/params.js';
import { DENSE_TILE_ROWS, denseKernel, denseTileRows, sgmatDense, type DenseKernel } from '../dispatch-policy.js';
import type { OpContext } from './context.js';
import { matmulOp, type MatmulArgs } from './basic.js';
import { denseRowsOps } from './dense-rows.js';
import { sgmatDenseOp, sgmatOf } from './sgmat.js';

export interface DenseTile {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
}

/**
 * Tiles of matmul_tiled (lib/gemm.wgsl) by rows, one per DENSE_TILE_ROWS entry: 128 invocations,
 * row slices of 16 (BM / TM), K slices of 16 so that As and Bs ((BM + BN) x 17 f32) stay within
 * WebGPU's default 16 KiB of workgroup storage (13 KiB for the 128-row tile).
 */
export const DENSE_TILES: Readonly<Record<(typeof DENSE_TILE_ROWS)[number], DenseTile>> = {
  64: { BM: 64, BN: 64, BK: 16, TM: 4, TN: 8 },
  128: { BM: 128, BN: 64, BK: 16, TM: 8, TN: 8 },
};
/** The largest tile (prefill chunks); the f32 GEMM the subgroup-matrix self-check compares with. */
export const DENSE_TILE = DENSE_TILES[128];

/** Multiply-adds of matmul_tiled over `rows` rows: whole tiles, the last one's rows rounded up to a row slice. */
export function tiledMacs(t: DenseTile, rows: number, k: number, n: number): number {
  const slice = t.BM / t.TM;
  const full = Math.floor(rows / t.BM);
  const rest = Math.ceil((rows - full * t.BM) / slice) * slice;
  return (full * t.BM + rest) * Math.ceil(n / t.BN) * t.BN * k;
}

/**
 * Every variant's dispatches for one product; each step runs one of them. The tiled GEMM reads W
 * once per BM rows (decode steps of up to 128 rows: once).
 * `kernel` pins the choice by rows (tests).
 */
export function denseOps(ctx: OpContext, a: MatmulArgs & { kernel?: (rows: number) => DenseKernel }): Dispatch[] {
  const pick = a.kernel ?? denseKernel;
  const rowsOf = (s: StepShape) => (a.outRows ? s.rows : s.tokens);
  // without full K slices of the tile, the tiled rows fall to the multi-row matvec
  const canTile = DENSE_TILE_ROWS.every((bm) => a.k % DENSE_TILES[bm].BK === 0);
  const kernelOf = (s: StepShape): DenseKernel => {
    const k = pick(rowsOf(s));
    return k === 'tiled' && !canTile ? 'rows' : k;
  };
  const is = (k: DenseKernel) => (s: StepShape) => kernelOf(s) === k;
  const small = matmulOp(ctx, a);
  const rows = denseRowsOps(ctx, { ...a, minRows: 1 }).map((d) => ({ ...d, when: is('rows') }));
  const ops: Dispatch[] = [{ ...small, when: is('matvec') }, ...rows];
  if (!canTile) return ops;
  // where the load-time self-check passed, the subgroup-matrix GEMM takes the tiled steps
  const sg = sgmatOf(ctx);
  if (sg) ops.push(sgmatDenseOp(ctx, a, sg.shape, (s) => is('tiled')(s) && sgmatDense(rowsOf(s), true)));
  const f32Tiled = (s: StepShape) => is('tiled')(s) && !sgmatDense(rowsOf(s), sg !== null);
  const flags = [a.bias ? 'BIAS' : '', a.accumulate ? 'ACCUMULATE' : '', a.outRows ? 'OUT_ROWS' : ''].filter(Boolean);
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.matmul_tiled, { k: a.k, n: a.n, n0: a.n0 ?? 0, ny: a.ny ?? a.n }, `${a.label}.tiled.params`);
  const bufs = [ctx.step, params, a.x, a.w, ...(a.bias ? [a.bias] : []), a.y];
  for (const bm of DENSE_TILE_ROWS) {
    const t = DENSE_TILES[bm];
    const pipeline = ctx.shaders.pipeline({ shader: 'matmul_tiled', defines: { ...t }, flags });
    const tiles = (s: StepShape) => Math.ceil(rowsOf(s) / t.BM);
    const label = `${a.label}.tiled${bm}`;
    const when = (s: StepShape) => f32Tiled(s) && denseTileRows(rowsOf(s)) === bm;
    ops.push({
      label,
      pipeline,
      bindGroup: bindGroup(ctx.gpu, pipeline, bufs, label),
      // W once per tile of BM rows
      weightBytes: (s) => (2 * a.k * a.n + (a.bias ? 4 * a.n : 0)) * tiles(s),
      macs: (s) => tiledMacs(t, rowsOf(s), a.k, a.n),
      when,
      groups: (s) => [tiles(s), Math.ceil(a.n / t.BN), 1],
    });
  }
  return ops;
}
