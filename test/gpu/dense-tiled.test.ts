// The tiled bf16 GEMM's variants (matmul_tiled with 64- and 128-row tiles, dispatch-policy.ts
// denseTileRows) against float64 references through denseOps, on fresh random inputs: row counts
// at every tile boundary and inside a row slice (32, 33, 47, 64, 65, 100, 128, 129, 200, 257), K
// that is a multiple of the 16-wide K slice but not of 32, output sizes that leave partial column
// tiles, bias, residual accumulate, and the logits-rows form writing one shard's columns. Outputs
// start poisoned and guard words after them must stay untouched. Each step runs exactly one
// variant; its weight bytes are W once per tile (so a decode step of up to 128 rows reads W once)
// and its multiply-adds those of its rows rounded up to a 16-row slice.
import { describe, expect, it } from 'vitest';
import { encodeDispatches, groupsOf, uploadBuffer, type Dispatch } from '../../src/gpu/buffers.js';
import { OpContext } from '../../src/engine/ops/context.js';
import { DENSE_TILES, denseOps, tiledMacs } from '../../src/engine/ops/dense.js';
import { DENSE_TILE_ROWS, denseTileRows } from '../../src/engine/dispatch-policy.js';
import { noGpuErrors, poisoned, readF32, readU32, shaderVariants, submit, testGpu } from '../helpers/gpu.js';
import { randomBf16, randomF32, rng } from '../helpers/random.js';
import { expectClose } from '../helpers/compare.js';

const gpu = await testGpu();
// matmul_tiled uses no subgroup operations: one shader variant covers it.
const { shaders } = (await shaderVariants()).at(-1)!;
const ctx = new OpContext(gpu, shaders);
const GUARD = 64;
const noRouting = { ids: () => new Uint32Array(0) };

function matmulRef(x: Float32Array, w: Float64Array, bias: Float32Array | null, T: number, K: number, N: number): Float64Array {
  const y = new Float64Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n]! : 0;
      for (let c = 0; c < K; c++) s += x[t * K + c]! * w[n * K + c]!;
      y[t * N + n] = s;
    }
  }
  return y;
}

async function run(ops: Dispatch[], tokens: number, rows = 0) {
  ctx.writeStep({ tokens, rows, samples: 0 });
  await noGpuErrors(gpu, () => submit(gpu, (p) => encodeDispatches(p, ops, { tokens, rows, samples: 0 })));
}

describe('matmul_tiled variants (64- and 128-row tiles)', () => {
  it('the policy: one 64-row tile up to 64 rows, else 128-row tiles', () => {
    expect(DENSE_TILE_ROWS).toEqual([64, 128]);
    for (const [rows, bm] of [[32, 64], [64, 64], [65, 128], [128, 128], [129, 128], [512, 128]] as const) expect(denseTileRows(rows)).toBe(bm);
    // within WebGPU's defaults: 256 invocations, 16 KiB of workgroup storage (As + Bs, padded rows)
    for (const t of Object.values(DENSE_TILES)) {
      expect((t.BM / t.TM) * (t.BN / t.TN)).toBeLessThanOrEqual(256);
      expect((t.BM + t.BN) * (t.BK + 1) * 4).toBeLessThanOrEqual(16384);
      expect(t.BK % 8).toBe(0);
    }
    // idle row slices do no arithmetic: 37 rows of a 64-row tile cost 48 rows
    expect(tiledMacs(DENSE_TILES[64], 37, 16, 64)).toBe(48 * 64 * 16);
    expect(tiledMacs(DENSE_TILES[128], 129, 16, 65)).toBe((128 + 16) * 128 * 16);
    // K without whole 16-wide slices: the multi-row matvec takes the tiled rows
    const dummy = uploadBuffer(gpu, new Uint32Array(64), 'dummy');
    const ops = denseOps(ctx, { x: dummy, w: dummy, y: dummy, k: 72, n: 8, label: 'odd' });
    expect(ops.some((o) => o.label.startsWith('odd.tiled'))).toBe(false);
    const shape = { tokens: 70, rows: 0, samples: 0 };
    expect(ops.filter((o) => (o.when ? o.when(shape) : true) && groupsOf(o, shape)).map((o) => o.label)).toEqual(['odd.rows32']);
  });

  it.each([
    // [T, K, N, bias, accumulate]
    [32, 48, 70, true, false],
    [33, 112, 203, false, true],
    [47, 2880, 9, true, true],
    [64, 64, 129, false, false],
    [65, 48, 64, true, false],
    [100, 208, 33, true, true],
    [128, 96, 70, false, false],
    [129, 48, 130, true, false],
    [200, 80, 40, false, true],
    [257, 64, 65, true, false],
  ] as const)('T=%i K=%i N=%i bias=%s accumulate=%s', async (T, K, N, useBias, acc) => {
    const r = rng(T * 977 + K * 31 + N);
    const x = randomF32(r, T * K);
    const w = randomBf16(r, N * K, 0.05);
    const bias = useBias ? randomF32(r, N) : null;
    const y0 = randomF32(r, T * N);
    const want = matmulRef(x, w.values, bias, T, K, N);
    if (acc) for (let i = 0; i < want.length; i++) want[i]! += y0[i]!;
    const y = acc ? uploadBuffer(gpu, Float32Array.from([...y0, ...new Array(GUARD).fill(-1)]), 'y') : poisoned(gpu, (T * N + GUARD) * 4);
    const ops = denseOps(ctx, { x: uploadBuffer(gpu, x, 'x'), w: uploadBuffer(gpu, w.bits, 'w'), bias: bias ? uploadBuffer(gpu, bias, 'b') : undefined, y, k: K, n: N, accumulate: acc, label: 'mm' });
    const shape = { tokens: T, rows: 0, samples: 0 };
    const ran = ops.filter((o) => (o.when ? o.when(shape) : true) && groupsOf(o, shape));
    const bm = T <= 64 ? 64 : 128;
    expect(ran.map((o) => o.label)).toEqual([`mm.tiled${bm}`]);
    await run(ops, T);
    expectClose(await readF32(gpu, y, T * N), want, 2e-5 * Math.sqrt(K), 1e-5, 'y');
    expect(Array.from(await readU32(gpu, y, GUARD, T * N))).toEqual(new Array(GUARD).fill(acc ? 0xbf800000 : 0xffffffff));
    const op = ran[0]!;
    const tiles = Math.ceil(T / bm);
    expect(op.weightBytes!(shape, noRouting)).toBe((2 * K * N + (bias ? 4 * N : 0)) * tiles);
    if (T <= 128) expect(tiles).toBe(1);
    const lastRows = T - (tiles - 1) * bm;
    expect(op.macs!(shape, noRouting)).toBe(((tiles - 1) * bm + Math.ceil(lastRows / 16) * 16) * Math.ceil(N / 64) * 64 * K);
  });

  it.each([
    [40, 3],
    [90, 7],
  ])('%i logits rows of a step with %i more tokens: a shard of the unembedding writes its own columns', async (R, extra) => {
    const [K, V, n0, n] = [48, 300, 110, 150];
    const r = rng(R * 5 + extra);
    const x = randomF32(r, R * K);
    const w = randomBf16(r, n * K, 0.05);
    const y = poisoned(gpu, R * V * 4);
    const ops = denseOps(ctx, { x: uploadBuffer(gpu, x, 'x'), w: uploadBuffer(gpu, w.bits, 'w'), y, k: K, n, n0, ny: V, outRows: true, label: 'unemb' });
    const shape = { tokens: R + extra, rows: R, samples: 0 };
    const ran = ops.filter((o) => (o.when ? o.when(shape) : true) && groupsOf(o, shape));
    expect(ran.map((o) => o.label)).toEqual([`unemb.tiled${R <= 64 ? 64 : 128}`]);
    await run(ops, R + extra, R);
    const got = await readF32(gpu, y, R * V);
    const want = matmulRef(x, w.values, null, R, K, n);
    for (let t = 0; t < R; t++) {
      expectClose(got.subarray(t * V + n0, t * V + n0 + n), want.subarray(t * n, (t + 1) * n), 1e-4, 1e-5, `row ${t}`);
      // columns of other shards stay untouched
      for (const c of [0, n0 - 1, n0 + n, V - 1]) expect(Number.isNaN(got[t * V + c]!), `row ${t} col ${c}`).toBe(true);
    }
  });
});
