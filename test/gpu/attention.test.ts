// rope_kv_write + attention (+ split combine) against float64 references: GQA of several shapes,
// sinks, sliding-window boundaries, ring wrap across chunks, decode at a few thousand positions with
// split-K, on both shader variants. Outputs and unwritten cache slots are poisoned with NaN.
import { describe, expect, it } from 'vitest';
import { encodeDispatches, storageBuffer, uploadBuffer, writeBuffer, type Dispatch } from '../../src/gpu/buffers.js';
import type { ShaderCache } from '../../src/gpu/shaders.js';
import { OpContext } from '../../src/engine/ops/context.js';
import {
  ATTN_TILE,
  attentionOps,
  attentionSplits,
  kvCapacity,
  ropeKvWriteOp,
  type AttentionTuning,
} from '../../src/engine/ops/attention.js';
import { ropeTable, type RopeConfig } from '../../src/engine/rope.js';
import { noGpuErrors, poisoned, readF32, shaderVariants, submit, testGpu } from '../helpers/gpu.js';
import { gaussian, randomF32, rng } from '../helpers/random.js';
import { expectClose } from '../helpers/compare.js';
import { attendRef, ropeAt, rotate, type AttnShape } from '../helpers/attention-ref.js';

const variants = await shaderVariants();
const gpu = await testGpu();

// gpt-oss RoPE (YaRN factor 32 over 4096, theta 150000).
const ROPE: Omit<RopeConfig, 'headDim'> = {
  ropeTheta: 150000,
  ropeScalingFactor: 32,
  ropeNtkAlpha: 1,
  ropeNtkBeta: 32,
  initialContextLength: 4096,
  ropeTruncate: false,
};

const NAN_BITS = 0xffffffff;

function setStep(ctx: OpContext, tokens: number, pos0: number) {
  ctx.writeStep({ tokens, pos0, outRow0: 0, outRows: tokens, seed: 0, counter: 0, temperature: 0, topP: 1, topK: 0 });
}

function run(ctx: OpContext, ops: Dispatch[], tokens: number) {
  return noGpuErrors(gpu, () => submit(gpu, (p) => encodeDispatches(p, ops, { tokens, outRows: tokens })));
}

function poison(buf: GPUBuffer, floats: number) {
  writeBuffer(gpu, buf, 0, new Uint32Array(floats).fill(NAN_BITS));
}

interface Case {
  name: string;
  nq: number;
  nkv: number;
  sliding: boolean;
  window: number;
  cap: number;
  /** Position of the first chunk; keys before it are written straight into the cache. */
  pos0: number;
  chunks: number[];
  tuning?: AttentionTuning;
  /** Query scale: scores have a standard deviation of about this (×1.8 for rotated keys). */
  qScale: number;
  /** Expected splits for every chunk (checks the test exercises what it claims). */
  splits?: (T: number) => boolean;
}

async function runCase(shaders: ShaderCache, c: Case, seed: number) {
  const d = 64;
  const ctx = new OpContext(gpu, shaders);
  const cfg = { numHeads: c.nq, numKvHeads: c.nkv, headDim: d, slidingWindow: c.window, ...ROPE };
  const shape: AttnShape = { nq: c.nq, nkv: c.nkv, d, sliding: c.sliding, window: c.window };
  const r = rng(seed);
  const W = (c.nq + 2 * c.nkv) * d;
  const Tmax = Math.max(...c.chunks);
  const end = c.pos0 + c.chunks.reduce((a, b) => a + b, 0);
  if (!c.sliding) expect(c.cap).toBeGreaterThanOrEqual(end);

  const rope = uploadBuffer(gpu, ropeTable(cfg, end), 'rope');
  const qkv = storageBuffer(gpu, Tmax * W * 4, 'qkv');
  const attn = poisoned(gpu, Tmax * c.nq * d * 4, 'attn');
  const sinks = Float32Array.from({ length: c.nq }, () => gaussian(r) * 2);
  sinks[0] = 9; // dominates most rows
  if (c.nq > 2) sinks[c.nq - 1] = -25; // negligible

  // Keys/values before pos0 (history, random, as if already rotated) go straight into the cache;
  // the reference keeps them flat [position - h0][nkv][d], and the chunks' own ones by position.
  const h0 = Math.max(0, c.pos0 - c.cap);
  const histK = randomF32(r, (c.pos0 - h0) * c.nkv * d);
  const histV = randomF32(r, (c.pos0 - h0) * c.nkv * d);
  const refK = new Map<number, Float64Array>();
  const refV = new Map<number, Float64Array>();
  const cacheK = new Float32Array(c.nkv * c.cap * d);
  const cacheV = new Float32Array(c.nkv * c.cap * d);
  new Uint32Array(cacheK.buffer).fill(NAN_BITS);
  new Uint32Array(cacheV.buffer).fill(NAN_BITS);
  for (let j = h0; j < c.pos0; j++) {
    for (let g = 0; g < c.nkv; g++) {
      const from = ((j - h0) * c.nkv + g) * d;
      const at = (g * c.cap + (j % c.cap)) * d;
      cacheK.set(histK.subarray(from, from + d), at);
      cacheV.set(histV.subarray(from, from + d), at);
    }
  }
  const kcache = uploadBuffer(gpu, cacheK, 'kcache');
  const vcache = uploadBuffer(gpu, cacheV, 'vcache');

  const ops = [
    ropeKvWriteOp(ctx, { qkv, rope, kcache, vcache, cfg, cap: c.cap, label: 'rope' }),
    ...attentionOps(ctx, {
      qkv,
      kcache,
      vcache,
      sinks: uploadBuffer(gpu, sinks, 'sinks'),
      attn,
      cfg,
      sliding: c.sliding,
      cap: c.cap,
      maxChunk: Tmax,
      tuning: c.tuning,
      label: 'attn',
    }),
  ];
  expect(ops.length).toBe(c.sliding ? 2 : 3);

  let pos0 = c.pos0;
  for (const T of c.chunks) {
    if (c.splits) expect(c.splits(attentionSplits(cfg, c.sliding, T, c.tuning)), `splits for T=${T}`).toBe(true);
    const x = randomF32(r, T * W);
    for (let t = 0; t < T; t++) for (let i = 0; i < c.nq * d; i++) x[t * W + i]! *= c.qScale;
    writeBuffer(gpu, qkv, 0, x);
    poison(attn, Tmax * c.nq * d);
    setStep(ctx, T, pos0);
    await run(ctx, ops, T);

    const want = new Float64Array(T * c.nq * d);
    const qs: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const cs = ropeAt(cfg, pos0 + t);
      const k = new Float64Array(c.nkv * d);
      const v = new Float64Array(c.nkv * d);
      for (let g = 0; g < c.nkv; g++) {
        k.set(rotate(x.subarray(t * W + (c.nq + g) * d), cs), g * d);
        v.set(x.subarray(t * W + (c.nq + c.nkv + g) * d, t * W + (c.nq + c.nkv + g + 1) * d), g * d);
      }
      refK.set(pos0 + t, k);
      refV.set(pos0 + t, v);
      for (let h = 0; h < c.nq; h++) qs.push(rotate(x.subarray(t * W + h * d), cs));
    }
    const hist = (a: Float32Array, j: number, g: number) => a.subarray(((j - h0) * c.nkv + g) * d, ((j - h0) * c.nkv + g + 1) * d);
    const key = (j: number, g: number) => (j < c.pos0 ? hist(histK, j, g) : refK.get(j)!.subarray(g * d, (g + 1) * d));
    const value = (j: number, g: number) => (j < c.pos0 ? hist(histV, j, g) : refV.get(j)!.subarray(g * d, (g + 1) * d));
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < c.nq; h++) {
        want.set(attendRef(shape, qs[t * c.nq + h]!, h, pos0 + t, sinks[h]!, key, value), (t * c.nq + h) * d);
      }
    }
    const got = await readF32(gpu, attn, T * c.nq * d);
    expectClose(got, want, 2e-5, 0, `${c.name}: chunk at ${pos0} (T=${T})`);
    pos0 += T;
  }
}

const CASES: Case[] = [
  { name: 'full, GQA 4, prefill', nq: 8, nkv: 2, sliding: false, window: 5, cap: 40, pos0: 0, chunks: [13], qScale: 3 },
  {
    name: 'full, GQA 4, one split over 3 tiles (combine idle)',
    nq: 8, nkv: 2, sliding: false, window: 5, cap: 200, pos0: 150, chunks: [13], qScale: 3,
    tuning: { targetWorkgroups: 1 }, splits: (s) => s === 1,
  },
  { name: 'sliding W=5, 1 kv head, GQA 4', nq: 4, nkv: 1, sliding: true, window: 5, cap: 15, pos0: 0, chunks: [11], qScale: 3 },
  { name: 'sliding W=5, GQA 1 (8 tokens per block)', nq: 2, nkv: 2, sliding: true, window: 5, cap: 23, pos0: 0, chunks: [19], qScale: 2 },
  { name: 'full, GQA 3 (blocks straddle tokens)', nq: 6, nkv: 2, sliding: false, window: 5, cap: 10, pos0: 0, chunks: [10], qScale: 3 },
  { name: 'full, GQA 16 (token over two blocks)', nq: 16, nkv: 1, sliding: false, window: 5, cap: 9, pos0: 0, chunks: [9], qScale: 3 },
  { name: 'full, GQA 8, large scores', nq: 8, nkv: 1, sliding: false, window: 5, cap: 13, pos0: 0, chunks: [13], qScale: 12 },
  {
    name: 'full, GQA 8, large scores over 4 tiles, one split',
    nq: 8, nkv: 1, sliding: false, window: 5, cap: 256, pos0: 190, chunks: [13], qScale: 12,
    tuning: { targetWorkgroups: 1 }, splits: (s) => s === 1,
  },
  {
    name: 'full, 2 splits of 6 tiles at 700',
    nq: 8, nkv: 2, sliding: false, window: 128, cap: 1024, pos0: 700, chunks: [2], qScale: 6,
    tuning: { maxSplits: 2 }, splits: (s) => s === 2,
  },
  {
    name: 'sliding W=6 ring wraps over chunks',
    nq: 4, nkv: 1, sliding: true, window: 6, cap: kvCapacity({ slidingWindow: 6 }, true, 1 << 20, 7), pos0: 0,
    chunks: [7, 7, 7, 3, 7, 5, 1, 1], qScale: 3,
  },
  {
    name: 'sliding W=128 decode at 5000 (ring)',
    nq: 8, nkv: 2, sliding: true, window: 128, cap: 143, pos0: 5000, chunks: [1, 1], qScale: 4,
  },
  {
    name: 'full decode at 2999 (split-K)',
    nq: 8, nkv: 2, sliding: false, window: 128, cap: 4096, pos0: 2999, chunks: [1, 1], qScale: 4,
    splits: (s) => s >= 32,
  },
  {
    name: 'full decode at 131071, last context position (64 splits of 32 tiles)',
    nq: 2, nkv: 1, sliding: false, window: 128, cap: 131072, pos0: 131071, chunks: [1], qScale: 4,
    splits: (s) => s === 64,
  },
  {
    name: 'full, 3 tokens at 1500 (split-K over a block of 2 tokens)',
    nq: 8, nkv: 2, sliding: false, window: 128, cap: 2048, pos0: 1500, chunks: [3], qScale: 4,
    splits: (s) => s > 1,
  },
  {
    name: 'full, GQA 3 at 200, forced 5 splits (one empty)',
    nq: 6, nkv: 2, sliding: false, window: 128, cap: 256, pos0: 200, chunks: [5, 3], qScale: 3,
    tuning: { targetWorkgroups: 64, maxSplits: 5 }, splits: (s) => s === 5,
  },
];

describe.each(variants)('attention ($name)', ({ shaders }) => {
  it.each([
    [4, 2, 64, 12, 20, 7],
    [3, 1, 10, 131072, 131060, 12],
  ])('rope_kv_write: nq=%i nkv=%i d=%i cap=%i pos0=%i T=%i', async (nq, nkv, d, cap, pos0, T) => {
    const ctx = new OpContext(gpu, shaders);
    const cfg = { numHeads: nq, numKvHeads: nkv, headDim: d, ...ROPE };
    const r = rng(nq * 31 + d + pos0);
    const W = (nq + 2 * nkv) * d;
    const x = randomF32(r, T * W);
    const qkv = uploadBuffer(gpu, x, 'qkv');
    const rope = uploadBuffer(gpu, ropeTable(cfg, pos0 + T), 'rope');
    const kcache = poisoned(gpu, nkv * cap * d * 4, 'k');
    const vcache = poisoned(gpu, nkv * cap * d * 4, 'v');
    const op = ropeKvWriteOp(ctx, { qkv, rope, kcache, vcache, cfg, cap, label: 'rope' });
    setStep(ctx, T, pos0);
    await run(ctx, [op], T);

    const wantQkv = Float64Array.from(x);
    const wantK = new Float64Array(nkv * cap * d).fill(NaN);
    const wantV = new Float64Array(nkv * cap * d).fill(NaN);
    for (let t = 0; t < T; t++) {
      const cs = ropeAt(cfg, pos0 + t);
      for (let h = 0; h < nq; h++) wantQkv.set(rotate(x.subarray(t * W + h * d), cs), t * W + h * d);
      for (let g = 0; g < nkv; g++) {
        const slot = (g * cap + ((pos0 + t) % cap)) * d;
        wantK.set(rotate(x.subarray(t * W + (nq + g) * d), cs), slot);
        wantV.set(x.subarray(t * W + (nq + nkv + g) * d, t * W + (nq + nkv + g + 1) * d), slot);
      }
    }
    // k and v heads stay as they were in qkv (attention reads them from the cache).
    expectClose(await readF32(gpu, qkv, T * W), wantQkv, 2e-6, 2e-6, 'rotated q');
    const k = await readF32(gpu, kcache, nkv * cap * d);
    const v = await readF32(gpu, vcache, nkv * cap * d);
    // Slots of other positions stay poisoned (no stray writes); compare the rest.
    let stray = 0;
    for (let i = 0; i < wantK.length; i++) {
      if (Number.isNaN(wantK[i]!)) {
        if (!Number.isNaN(k[i]!) || !Number.isNaN(v[i]!)) stray++;
        k[i] = v[i] = wantK[i] = wantV[i] = 0;
      }
    }
    expect(stray, 'cache elements written outside the chunk positions').toBe(0);
    expectClose(k, wantK, 2e-6, 2e-6, 'kcache');
    expectClose(v, wantV, 0, 0, 'vcache');
  });

  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    await runCase(shaders, c, 1000 + i);
  });

  it('splits are tile-aligned and cover the keys (plan sanity)', () => {
    const cfg = { numHeads: 64, numKvHeads: 8, headDim: 64, slidingWindow: 128 };
    expect(attentionSplits(cfg, true, 1)).toBe(1);
    expect(attentionSplits(cfg, false, 1)).toBe(32);
    expect(attentionSplits(cfg, false, 512)).toBe(1);
    expect(ATTN_TILE % 8).toBe(0);
  });
});
