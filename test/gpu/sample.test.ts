// The GPU sampler against exact CPU expectations: greedy ties, top-k / top-p support, seeded replay
// and the sampled frequencies against the softmax probabilities.
import { describe, expect, it } from 'vitest';
import { encodeDispatches, uploadBuffer, writeBuffer } from '../../src/gpu/buffers.js';
import { OpContext } from '../../src/engine/ops/context.js';
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

  it('top-k and top-p restrict the support; a seed replays the same token', async () => {
    const V = 517;
    const l = randomF32(rng(9), V, 1);
    const order = [...l.keys()].sort((a, b) => l[b]! - l[a]! || a - b);
    const top3 = new Set(order.slice(0, 3));
    // nucleus at top_p 0.5 with temperature 0.7
    const ps = order.map((i) => Math.exp((l[i]! - l[order[0]!]!) / 0.7));
    const z = ps.reduce((a, b) => a + b, 0);
    let cum = 0;
    const nucleus = new Set<number>();
    for (let j = 0; j < V; j++) {
      nucleus.add(order[j]!);
      cum += ps[j]! / z;
      if (cum >= 0.5) break;
    }
    const seenK = new Set<number>();
    const seenP = new Set<number>();
    for (let c = 0; c < 60; c++) {
      const a = await sample(l, V, 1, { t: 1, topK: 3, counter: c });
      expect(top3.has(a), `top-k sampled ${a}`).toBe(true);
      seenK.add(a);
      const b = await sample(l, V, 1, { t: 0.7, topP: 0.5, counter: c });
      expect(nucleus.has(b), `top-p sampled ${b}`).toBe(true);
      seenP.add(b);
    }
    expect(seenK.size).toBeGreaterThan(1);
    expect(seenP.size).toBe(Math.min(nucleus.size, seenP.size));
    const again = await sample(l, V, 1, { t: 1, seed: 77, counter: 5 });
    expect(await sample(l, V, 1, { t: 1, seed: 77, counter: 5 })).toBe(again);
  });

  it('sampled frequencies follow softmax(logits / temperature)', async () => {
    const V = 6;
    const l = Float32Array.from([1.0, 2.0, 0.5, -1, 1.5, 0.0]);
    const t = 0.8;
    const w = [...l].map((v) => Math.exp(v / t));
    const z = w.reduce((a, b) => a + b, 0);
    const n = 600;
    const counts = new Array(V).fill(0);
    const lb = uploadBuffer(gpu, l, 'logits');
    const tokens = poisoned(gpu, 16);
    const op = sampleOp(ctx, { logits: lb, tokens, vocab: V });
    for (let c = 0; c < n; c++) {
      ctx.writeStep({ tokens: 1, pos0: 0, outRow0: 0, outRows: 1, seed: 3, counter: c, temperature: t, topP: 1, topK: 0 });
      writeBuffer(gpu, tokens, 0, new Uint32Array([0xffffffff]));
      submit(gpu, (p) => encodeDispatches(p, [op], { tokens: 1, outRows: 1 }));
      counts[(await readU32(gpu, tokens, 1))[0]!]++;
    }
    let chi2 = 0;
    for (let i = 0; i < V; i++) {
      const e = (n * w[i]!) / z;
      chi2 += (counts[i] - e) ** 2 / e;
    }
    // 5 degrees of freedom: P(chi2 > 25) < 2e-4.
    expect(chi2, `counts ${counts}`).toBeLessThan(25);
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
