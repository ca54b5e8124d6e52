// The GPU sampler against exact CPU expectations: greedy ties, seeded replay, and the sampled
// frequencies of temperature, top-k and top-p sampling against their exact distributions.
import { describe, expect, it } from 'vitest';
import { encodeDispatches, uploadBuffer } from '../../src/gpu/buffers.js';
import { OpContext } from '../../src/engine/ops/context.js';
import type { Dispatch } from '../../src/gpu/buffers.js';
import { sampleOp, samplerMask } from '../../src/engine/ops/sample.js';
import { poisoned, readU32, shaderVariants, submit, testGpu } from '../helpers/gpu.js';
import { randomF32, rng } from '../helpers/random.js';

const gpu = await testGpu();
const { shaders } = (await shaderVariants())[0]!;
const ctx = new OpContext(gpu, shaders);

async function sample(
  logits: Float32Array,
  vocab: number,
  rows: number,
  o: { t: number; topK?: number; topP?: number; seed?: number; counter?: number; mask?: Uint32Array },
) {
  const lb = uploadBuffer(gpu, logits, 'logits');
  const tokens = poisoned(gpu, 16);
  const op = sampleOp(ctx, { logits: lb, tokens, vocab });
  if (o.mask) samplerMask(op).set(o.mask);
  ctx.writeStep({ tokens: rows, pos0: 0, outRow0: 0, outRows: rows, seed: o.seed ?? 1, counter: o.counter ?? 0, temperature: o.t, topP: o.topP ?? 1, topK: o.topK ?? 0 });
  submit(gpu, (p) => encodeDispatches(p, [op], { tokens: rows, outRows: rows }));
  return (await readU32(gpu, tokens, 1))[0]!;
}

/**
 * softmax(logits / t) in float64, cut to the top_k largest, then to the smallest top set holding
 * top_p of that mass (the sampler's definition); 0 outside. Checks no cut is within 0.005 of top_p, far beyond f32 rounding.
 */
function exactDistribution(logits: Float32Array, o: { t: number; topK?: number; topP?: number }): Float64Array {
  const order = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]!);
  let keep = o.topK ? order.slice(0, o.topK) : order;
  const w = (i: number) => Math.exp((logits[i]! - logits[order[0]!]!) / o.t);
  if (o.topP !== undefined && o.topP < 1) {
    const z = keep.reduce((a, i) => a + w(i), 0);
    let cum = 0;
    let n = 0;
    while (cum < o.topP) {
      cum += w(keep[n++]!) / z;
      if (Math.abs(cum - o.topP) < 5e-3) throw new Error('top_p falls on a rounding edge; change the test logits');
    }
    keep = keep.slice(0, n);
  }
  const z = keep.reduce((a, i) => a + w(i), 0);
  const p = new Float64Array(logits.length);
  for (const i of keep) p[i] = w(i) / z;
  return p;
}

/** Wilson-Hilferty approximation of the chi-square quantile with `df` degrees of freedom at normal deviate z. */
function chiSquareQuantile(df: number, z: number): number {
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

/**
 * `n` draws from one logits row: BATCH samplers per submit, each with its own Step buffer holding
 * its own counter, so one submit and one readback give BATCH independent draws.
 */
const BATCH = 256;
const batch = Array.from({ length: BATCH }, () => new OpContext(gpu, shaders));
async function manyDraws(logits: Float32Array, o: { t: number; topK?: number; topP?: number }, n: number, seed: number): Promise<Uint32Array> {
  const lb = uploadBuffer(gpu, logits, 'logits');
  const tokens = batch.map(() => poisoned(gpu, 16));
  const ops: Dispatch[] = batch.map((c, i) => sampleOp(c, { logits: lb, tokens: tokens[i]!, vocab: logits.length }));
  const readback = gpu.device.createBuffer({ size: BATCH * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const out = new Uint32Array(n);
  for (let done = 0; done < n; done += BATCH) {
    batch.forEach((c, i) =>
      c.writeStep({ tokens: 1, pos0: 0, outRow0: 0, outRows: 1, seed, counter: done + i, temperature: o.t, topP: o.topP ?? 1, topK: o.topK ?? 0 }),
    );
    const enc = gpu.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    encodeDispatches(pass, ops, { tokens: 1, outRows: 1 });
    pass.end();
    tokens.forEach((t, i) => enc.copyBufferToBuffer(t, 0, readback, 4 * i, 4));
    gpu.device.queue.submit([enc.finish()]);
    await readback.mapAsync(GPUMapMode.READ);
    out.set(new Uint32Array(readback.getMappedRange()).subarray(0, Math.min(BATCH, n - done)), done);
    readback.unmap();
  }
  for (const b of [lb, readback, ...tokens]) b.destroy();
  return out;
}

describe('sampler', () => {
  it('greedy picks the argmax of the last row, lowest index on ties', async () => {
    const V = 1003;
    const r = rng(5);
    for (let trial = 0; trial < 4; trial++) {
      const l = randomF32(r, 2 * V, 3);
      const best = 17 + trial * 200;
      l[V + best] = 50;
      l[V + best + 300] = 50; // a tie further on
      l[best] = 99; // the first row must be ignored
      expect(await sample(l, V, 2, { t: 0 })).toBe(best);
    }
  });

  it('a seed and counter replay the same token', async () => {
    const V = 517;
    const l = randomF32(rng(9), V, 1);
    const again = await sample(l, V, 1, { t: 1, seed: 77, counter: 5 });
    expect(await sample(l, V, 1, { t: 1, seed: 77, counter: 5 })).toBe(again);
  });

  // Many seeded draws on fixed logits against the exact distribution (float64) of each setting.
  // Bound: under the right sampler, Pearson's statistic over the kept tokens follows chi-square
  // with k - 1 degrees of freedom; failing above its 1 - 1e-6 quantile makes a false alarm
  // practically impossible. A sampler whose distribution is off by a total variation d raises the
  // statistic's mean by N times the chi-square divergence, at least 4 N d^2 (Cauchy-Schwarz):
  // with N = 4096, d = 0.1 adds 160 or more, over every bound below (40 to 109). Draws outside
  // the kept set fail outright, and every kept token must be drawn: each has an expected count of
  // at least 20 by construction, so a miss has probability below e^-20.
  describe('distribution over many seeded draws', () => {
    const V = 48;
    // Distinct logits, spread so that the full softmax keeps every token above 1% at T = 1.6.
    const logits = Float32Array.from({ length: V }, (_, i) => 2.5 - 0.04 * i - 0.04 * ((i * 7) % 5));
    const N = 4096;
    const cases: Array<{ name: string; t: number; topK?: number; topP?: number; kept: number }> = [
      { name: 'temperature 1.6', t: 1.6, kept: V },
      { name: 'top-k 7 at temperature 0.5', t: 0.5, topK: 7, kept: 7 },
      { name: 'top-p 0.45 at temperature 0.8', t: 0.8, topP: 0.45, kept: 11 },
      { name: 'top-k 20 then top-p 0.67 at temperature 1', t: 1, topK: 20, topP: 0.67, kept: 12 },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const p = exactDistribution(logits, c);
        const kept = [...p.keys()].filter((i) => p[i]! > 0);
        expect(kept.length).toBe(c.kept);
        // The nucleus is more than the argmax, and no cut sits near a rounding edge.
        expect(kept.length).toBeGreaterThan(2);
        for (const i of kept) expect(N * p[i]!).toBeGreaterThanOrEqual(20);
        const counts = new Array<number>(V).fill(0);
        for (const id of await manyDraws(logits, c, N, 1000 + kept.length)) counts[id]!++;
        const outside = counts.map((n, i) => (p[i] === 0 ? n : 0)).reduce((a, b) => a + b, 0);
        expect(outside, `draws outside the kept set: ${counts}`).toBe(0);
        for (const i of kept) expect(counts[i], `token ${i} (p = ${p[i]!.toFixed(4)}) never drawn`).toBeGreaterThan(0);
        let chi2 = 0;
        for (const i of kept) chi2 += (counts[i]! - N * p[i]!) ** 2 / (N * p[i]!);
        expect(chi2, `counts ${counts}`).toBeLessThan(chiSquareQuantile(kept.length - 1, 4.753));
      });
    }
  });

  it('an allowed-token mask restricts argmax and sampling; set(null) turns it off', async () => {
    const V = 1003;
    const r = rng(21);
    const l = randomF32(r, V, 2);
    const allowed = new Set<number>();
    for (let i = 0; i < V; i++) if (r() < 0.1) allowed.add(i);
    allowed.add(V - 1); // the last, partial mask word
    const order = [...l.keys()].sort((a, b) => l[b]! - l[a]! || a - b);
    l[order.find((i) => !allowed.has(i))!] = 100; // the global argmax is masked out
    const mask = new Uint32Array(Math.ceil(V / 32));
    for (const i of allowed) mask[i >>> 5]! |= 1 << (i & 31);
    const best = [...allowed].sort((a, b) => l[b]! - l[a]! || a - b);
    expect(await sample(l, V, 1, { t: 0, mask })).toBe(best[0]);
    const top3 = new Set(best.slice(0, 3));
    const seen = new Set<number>();
    for (let c = 0; c < 40; c++) {
      const a = await sample(l, V, 1, { t: 1, topK: 3, counter: c, mask });
      expect(top3.has(a), `top-k masked sampled ${a}`).toBe(true);
      const b = await sample(l, V, 1, { t: 2, counter: c, mask });
      expect(allowed.has(b), `masked sampled ${b}`).toBe(true);
      seen.add(b);
    }
    expect(seen.size).toBeGreaterThan(3);
    // a single allowed token is always chosen, whatever the sampling settings
    const one = new Uint32Array(mask.length);
    one[(V - 1) >>> 5] = 1 << ((V - 1) & 31);
    for (let c = 0; c < 5; c++) expect(await sample(l, V, 1, { t: 1.5, topP: 0.3, counter: c, mask: one })).toBe(V - 1);
    // switching the mask off on the same dispatch restores the plain argmax
    const lb = uploadBuffer(gpu, l, 'logits');
    const tokens = poisoned(gpu, 16);
    const op = sampleOp(ctx, { logits: lb, tokens, vocab: V });
    samplerMask(op).set(one);
    samplerMask(op).set(null);
    ctx.writeStep({ tokens: 1, pos0: 0, outRow0: 0, outRows: 1, seed: 1, counter: 0, temperature: 0, topP: 1, topK: 0 });
    submit(gpu, (p) => encodeDispatches(p, [op], { tokens: 1, outRows: 1 }));
    const argmax = l.indexOf(Math.max(...l));
    expect(allowed.has(argmax)).toBe(false);
    expect((await readU32(gpu, tokens, 1))[0]).toBe(argmax);
  });
});
