// The multi-row bf16 matvec variants (matmul_rows_bf16, 2/4/8/16/32 rows per token tile) against
// float64 references on both reduction paths: steps of 2..128 rows (every variant, and tiles of
// 32 past it), bias, residual accumulate, the logits-rows form with a shard of the unembedding's
// columns; outputs poisoned, guard words after them untouched; each step runs exactly one variant,
// whose weight bytes are W once per tile and whose multiply-adds are exactly the step's rows'.
import { describe, expect, it } from 'vitest';
import { encodeDispatches, groupsOf, uploadBuffer } from '../../src/gpu/buffers.js';
import { OpContext } from '../../src/engine/ops/context.js';
import { DENSE_ROW_VARIANTS, denseRowsOps } from '../../src/engine/ops/dense-rows.js';
import { noGpuErrors, poisoned, readF32, readU32, shaderVariants, submit, testGpu } from '../helpers/gpu.js';
import { randomBf16, randomF32, rng } from '../helpers/random.js';
import { expectClose } from '../helpers/compare.js';

const variants = await shaderVariants();
const gpu = await testGpu();
const GUARD = 64;

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

const noRouting = { ids: () => new Uint32Array(0) };

describe.each(variants)('multi-row bf16 matvec ($name)', ({ shaders }) => {
  const ctx = new OpContext(gpu, shaders);

  it.each([
    // [T, K, N, bias, accumulate]
    [2, 96, 203, true, false],
    [3, 64, 37, false, true],
    [5, 136, 70, true, true],
    [8, 2880, 33, true, false],
    [16, 256, 129, false, false],
    [33, 96, 64, true, true],
    [64, 512, 40, true, false],
    [128, 64, 9, false, true],
  ] as const)('T=%i K=%i N=%i bias=%s accumulate=%s', async (T, K, N, useBias, acc) => {
    const r = rng(T * 131 + K * 7 + N);
    const x = randomF32(r, T * K);
    const w = randomBf16(r, N * K, 0.05);
    const bias = useBias ? randomF32(r, N) : null;
    const y0 = randomF32(r, T * N);
    const want = matmulRef(x, w.values, bias, T, K, N);
    if (acc) for (let i = 0; i < want.length; i++) want[i]! += y0[i]!;
    const y = acc ? uploadBuffer(gpu, Float32Array.from([...y0, ...new Array(GUARD).fill(-1)]), 'y') : poisoned(gpu, (T * N + GUARD) * 4);
    const ops = denseRowsOps(ctx, { x: uploadBuffer(gpu, x, 'x'), w: uploadBuffer(gpu, w.bits, 'w'), bias: bias ? uploadBuffer(gpu, bias, 'b') : undefined, y, k: K, n: N, accumulate: acc, label: 'mm' });
    const shape = { tokens: T, rows: 0, samples: 0 };
    const active = ops.filter((o) => groupsOf(o, shape) !== null);
    expect(active.length, 'one variant per step').toBe(1);
    const rt = DENSE_ROW_VARIANTS.find((v) => v >= T) ?? 32;
    expect(active[0]!.label).toBe(`mm.rows${rt}`);
    ctx.writeStep(shape);
    await noGpuErrors(gpu, () => submit(gpu, (p) => encodeDispatches(p, ops, shape)));
    expectClose(await readF32(gpu, y, T * N), want, 2e-5 * Math.sqrt(K), 1e-5, 'y');
    expect(Array.from(await readU32(gpu, y, GUARD, T * N))).toEqual(new Array(GUARD).fill(acc ? 0xbf800000 : 0xffffffff));
    const bytes = ops.reduce((s, o) => s + (o.weightBytes?.(shape, noRouting) ?? 0), 0);
    expect(bytes).toBe((2 * K * N + (bias ? 4 * N : 0)) * Math.ceil(T / rt));
    expect(ops.reduce((s, o) => s + (o.macs?.(shape, noRouting) ?? 0), 0)).toBe(T * N * K);
  });

  it('logits rows: a shard of the unembedding writes its own columns', async () => {
    const [R, K, V, n0, n] = [5, 64, 300, 110, 150];
    const r = rng(4242);
    const x = randomF32(r, R * K);
    const w = randomBf16(r, n * K, 0.05);
    const y = poisoned(gpu, R * V * 4);
    const ops = denseRowsOps(ctx, { x: uploadBuffer(gpu, x, 'x'), w: uploadBuffer(gpu, w.bits, 'w'), y, k: K, n, n0, ny: V, outRows: true, label: 'unemb' });
    const shape = { tokens: 9, rows: R, samples: 0 };
    ctx.writeStep(shape);
    await noGpuErrors(gpu, () => submit(gpu, (p) => encodeDispatches(p, ops, shape)));
    const got = await readF32(gpu, y, R * V);
    const want = matmulRef(x, w.values, null, R, K, n);
    for (let t = 0; t < R; t++) {
      expectClose(got.subarray(t * V + n0, t * V + n0 + n), want.subarray(t * n, (t + 1) * n), 1e-4, 1e-5, `row ${t}`);
      expect(Number.isNaN(got[t * V + n0 - 1]!) && Number.isNaN(got[t * V + n0 + n]!)).toBe(true);
    }
  });

  it('steps of one row (or fewer than minRows) leave the variants idle', () => {
    const dummy = uploadBuffer(gpu, new Uint32Array(64), 'dummy');
    const ops = denseRowsOps(ctx, { x: dummy, w: dummy, y: dummy, k: 64, n: 8, label: 'idle' });
    const at = (tokens: number) => ops.filter((o) => groupsOf(o, { tokens, rows: 0, samples: 0 }) !== null).length;
    expect(at(1)).toBe(0);
    for (const t of [2, 3, 4, 5, 9, 17, 32, 33, 200]) expect(at(t)).toBe(1);
  });
});
