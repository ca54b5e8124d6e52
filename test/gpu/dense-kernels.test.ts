// embed, rmsnorm and the bf16 matmul against float64 references, on both reduction paths.
import { describe, expect, it } from 'vitest';
import { uploadBuffer, encodeDispatches } from '../../src/gpu/buffers.js';
import { OpContext, SAMPLED_ID, TOK_INFO_WORDS } from '../../src/engine/ops/context.js';
import { embedOps, matmulOp, rmsnormOp } from '../../src/engine/ops/basic.js';
import { noGpuErrors, poisoned, readF32, shaderVariants, submit, testGpu } from '../helpers/gpu.js';
import { randomBf16, randomF32, rng } from '../helpers/random.js';
import { expectClose } from '../helpers/compare.js';

const variants = await shaderVariants();
const gpu = await testGpu();

function step(ctx: OpContext, tokens: number, rows = tokens) {
  ctx.writeStep({ tokens, rows, samples: 0 });
}

function matmulRef(x: Float32Array, w: Float64Array, bias: Float64Array | null, T: number, K: number, N: number) {
  const y = new Float64Array(T * N);
  for (let t = 0; t < T; t++)
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n]! : 0;
      for (let k = 0; k < K; k++) s += x[t * K + k]! * w[n * K + k]!;
      y[t * N + n] = s;
    }
  return y;
}

describe.each(variants)('dense kernels ($name)', ({ shaders }) => {
  it('embed gathers bf16 rows for every token: literal ids, ids the sampler left in a slot, a table in two shards', async () => {
    const ctx = new OpContext(gpu, shaders);
    const r = rng(11);
    const V = 37, H = 72, T = 13, slots = 5;
    const table = randomBf16(r, V * H);
    const lastIds = Uint32Array.from({ length: slots }, () => Math.floor(r() * V));
    const ids = Uint32Array.from({ length: T }, () => Math.floor(r() * V));
    const toks = new Uint32Array(T * TOK_INFO_WORDS);
    for (let t = 0; t < T; t++) toks[t * TOK_INFO_WORDS] = t % 3 === 1 ? (SAMPLED_ID | t % slots) >>> 0 : ids[t]!;
    const x = poisoned(gpu, T * H * 4);
    const split = 20;
    const ops = embedOps(ctx, {
      toks: uploadBuffer(gpu, toks, 'toks'),
      lastIds: uploadBuffer(gpu, lastIds, 'last'),
      table: [
        { buffer: uploadBuffer(gpu, table.bits.subarray(0, split * H), 't0'), first: 0, count: split },
        { buffer: uploadBuffer(gpu, table.bits.subarray(split * H), 't1'), first: split, count: V - split },
      ],
      x,
      hidden: H,
    });
    step(ctx, T);
    await noGpuErrors(gpu, () => submit(gpu, (p) => encodeDispatches(p, ops, { tokens: T, rows: T, samples: 0 })));
    const got = await readF32(gpu, x, T * H);
    const want = new Float64Array(T * H);
    for (let t = 0; t < T; t++) {
      const id = t % 3 === 1 ? lastIds[t % slots]! : ids[t]!;
      for (let i = 0; i < H; i++) want[t * H + i] = table.values[id * H + i]!;
    }
    expectClose(got, want, 0, 0, 'embed');
  });

  it.each([
    [1, 96],
    [7, 200],
    [3, 2880],
  ])('rmsnorm T=%i H=%i, and the final norm over a row range', async (T, H) => {
    const ctx = new OpContext(gpu, shaders);
    const r = rng(T * 1000 + H);
    const x = randomF32(r, T * H, 2.5);
    const scale = randomF32(r, H, 1);
    const eps = 1e-5;
    const ref = new Float64Array(T * H);
    for (let t = 0; t < T; t++) {
      let ss = 0;
      for (let i = 0; i < H; i++) ss += x[t * H + i]! ** 2;
      const inv = 1 / Math.sqrt(ss / H + eps);
      for (let i = 0; i < H; i++) ref[t * H + i] = x[t * H + i]! * inv * scale[i]!;
    }
    const xb = uploadBuffer(gpu, x, 'x');
    const sb = uploadBuffer(gpu, scale, 's');
    const y = poisoned(gpu, T * H * 4);
    const op = rmsnormOp(ctx, { x: xb, scale: sb, y, hidden: H, eps, label: 'norm' });
    step(ctx, T);
    await noGpuErrors(gpu, () => submit(gpu, (p) => encodeDispatches(p, [op], { tokens: T, rows: T, samples: 0 })));
    expectClose(await readF32(gpu, y, T * H), ref, 1e-5, 1e-5, 'rmsnorm');

    // Final norm: only the listed rows are normalised, compacted into the first rows of the output.
    const rows = T > 1 ? [T - 1, 0] : [0];
    const y2 = poisoned(gpu, rows.length * H * 4);
    const op2 = rmsnormOp(ctx, { x: xb, scale: sb, y: y2, hidden: H, eps, rows: uploadBuffer(gpu, Uint32Array.from(rows), 'rows'), label: 'final' });
    step(ctx, T, rows.length);
    await noGpuErrors(gpu, () => submit(gpu, (p) => encodeDispatches(p, [op2], { tokens: T, rows: rows.length, samples: 0 })));
    const wantRows = new Float64Array(rows.length * H);
    rows.forEach((r, i) => wantRows.set(ref.subarray(r * H, (r + 1) * H), i * H));
    expectClose(await readF32(gpu, y2, rows.length * H), wantRows, 1e-5, 1e-5, 'final norm');
  });

  it.each([
    [1, 64, 37, true, false],
    [5, 96, 203, false, false],
    [11, 136, 70, true, true],
    [17, 2880, 9, true, false],
  ])('matmul T=%i K=%i N=%i bias=%s accumulate=%s', async (T, K, N, useBias, acc) => {
    const ctx = new OpContext(gpu, shaders);
    const r = rng(T * 7 + K * 13 + N);
    const x = randomF32(r, T * K);
    const w = randomBf16(r, N * K, 0.05);
    const bias = useBias ? randomF32(r, N) : null;
    const y0 = randomF32(r, T * N);
    const want = matmulRef(x, w.values, bias ? Float64Array.from(bias) : null, T, K, N);
    if (acc) for (let i = 0; i < want.length; i++) want[i]! += y0[i]!;
    const y = acc ? uploadBuffer(gpu, y0, 'y') : poisoned(gpu, T * N * 4);
    const op = matmulOp(ctx, {
      x: uploadBuffer(gpu, x, 'x'),
      w: uploadBuffer(gpu, w.bits, 'w'),
      bias: bias ? uploadBuffer(gpu, bias, 'b') : undefined,
      y,
      k: K,
      n: N,
      accumulate: acc,
      label: 'mm',
    });
    step(ctx, T);
    await noGpuErrors(gpu, () => submit(gpu, (p) => encodeDispatches(p, [op], { tokens: T, rows: T, samples: 0 })));
    const d = expectClose(await readF32(gpu, y, T * N), want, 2e-5 * Math.sqrt(K), 1e-5, 'matmul');
    expect(d.maxAbs).toBeLessThan(1e-3);
  });
});
