// The GPU sampler against exact CPU expectations: greedy ties, top-k / top-p support, seeded replay,
// the sampled frequencies of temperature, top-k and top-p sampling against their exact
// distributions, masks, and many rows with their own settings in one dispatch. (Temperature
// sampling over the whole softmax is a Gumbel-max draw: gumbel.test.ts checks it draw by draw.)
import { describe, expect, it } from 'vitest';
import { encodeDispatches, uploadBuffer, writeBuffer } from '../../src/gpu/buffers.js';
import { OpContext, SAMPLE_ROW_WORDS, StepInputs } from '../../src/engine/ops/context.js';
import { SAMPLE_LIST, sampleOps } from '../../src/engine/ops/sample.js';
import { readU32, shaderVariants, submit, testGpu } from '../helpers/gpu.js';
import { randomF32, rng } from '../helpers/random.js';
import { groupedChiSquare } from '../helpers/sampling-ref.js';

const gpu = await testGpu();
const { shaders } = (await shaderVariants())[0]!;
const ctx = new OpContext(gpu, shaders);

export interface RowSettings {
  /** Logits row the draw reads. */
  row: number;
  t: number;
  topK?: number;
  topP?: number;
  seed?: number;
  counter?: number;
  /** Allowed-token mask of the row (bit i of word i >> 5); the row's slot is its index. */
  mask?: Uint32Array;
}

/**
 * One sampler run over `rows` draws from `logits` ([R][V]); returns each draw's id.
 */
async function sampleRows(logits: Float32Array, vocab: number, rows: RowSettings[]): Promise<Uint32Array> {
  const R = logits.length / vocab;
  const inputs = new StepInputs(gpu, { tokens: 1, rows: R, samples: rows.length, seqs: rows.length, vocab });
  const ops = sampleOps(ctx, { logits: uploadBuffer(gpu, logits, 'logits'), inputs, vocab });
  const words = new Uint32Array(rows.length * SAMPLE_ROW_WORDS);
  const floats = new Float32Array(words.buffer);
  rows.forEach((o, i) => {
    const w = i * SAMPLE_ROW_WORDS;
    words.set([o.row, i, o.seed ?? 1, o.counter ?? 0], w);
    floats[w + 4] = o.t;
    floats[w + 5] = o.topP ?? 1;
    words[w + 6] = o.topK ?? 0;
    words[w + 7] = o.mask ? 1 : 0;
    if (o.mask) writeBuffer(gpu, inputs.masks, i * inputs.maskWords * 4, o.mask);
  });
  writeBuffer(gpu, inputs.sampling, 0, words);
  writeBuffer(gpu, inputs.sampled, 0, new Uint32Array(rows.length).fill(0xffffffff));
  writeBuffer(gpu, inputs.lastIds, 0, new Uint32Array(rows.length).fill(0xffffffff));
  ctx.writeStep({ tokens: 1, rows: R, samples: rows.length });
  submit(gpu, (p) => encodeDispatches(p, ops, { tokens: 1, rows: R, samples: rows.length }));
  const ids = await readU32(gpu, inputs.sampled, rows.length);
  // the next step's embedding reads the same ids from each slot
  expect(await readU32(gpu, inputs.lastIds, rows.length)).toEqual(ids);
  inputs.destroy();
  return ids;
}

async function sample(
  logits: Float32Array,
  vocab: number,
  rows: number,
  o: { t: number; topK?: number; topP?: number; seed?: number; counter?: number; mask?: Uint32Array },
): Promise<number> {
  return (await sampleRows(logits, vocab, [{ ...o, row: rows - 1 }]))[0]!;
}

/**
 * softmax(logits / t) in float64, cut to the top_k largest, then to the smallest top set holding
 * top_p of that mass (the sampler's definition); 0 outside. Checks no cut is within 0.005 of top_p, far beyond f32 rounding.
 */
function exactDistribution(logits: Float32Array, o: { t: number; topK?: number; topP?: number }, edge = 5e-3): Float64Array {
  const order = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]!);
  let keep = o.topK ? order.slice(0, o.topK) : order;
  const w = (i: number) => Math.exp((logits[i]! - logits[order[0]!]!) / o.t);
  if (o.topP !== undefined && o.topP < 1) {
    const z = keep.reduce((a, i) => a + w(i), 0);
    let cum = 0;
    let n = 0;
    while (cum < o.topP) {
      cum += w(keep[n++]!) / z;
      if (Math.abs(cum - o.topP) < edge) throw new Error('top_p falls on a rounding edge; change the test logits');
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

/** `n` seeded draws (counters 0..n-1) from one logits row: one sampler run of n rows. */
async function manyDraws(logits: Float32Array, o: { t: number; topK?: number; topP?: number }, n: number, seed: number): Promise<Uint32Array> {
  return sampleRows(logits, logits.length, Array.from({ length: n }, (_, c) => ({ row: 0, ...o, seed, counter: c })));
}

describe('sampler', () => {
  it('rows of one dispatch use their own logits row, temperature, top-k, top-p and seed', async () => {
    const V = 301;
    const r = rng(17);
    const l = randomF32(r, 3 * V, 2);
    const argmaxOf = (row: number) => {
      const x = l.subarray(row * V, (row + 1) * V);
      return x.indexOf(Math.max(...x));
    };
    const rows: RowSettings[] = [
      { row: 2, t: 0 },
      { row: 0, t: 0 },
      { row: 1, t: 1, topK: 1, seed: 5 },
      { row: 1, t: 0.8, topP: 1e-6, seed: 9 },
    ];
    const ids = await sampleRows(l, V, rows);
    // greedy rows, and sampling rows whose top-k / top-p keep only the argmax
    expect([...ids]).toEqual([argmaxOf(2), argmaxOf(0), argmaxOf(1), argmaxOf(1)]);
    // a seeded row draws the same in any company
    const alone = await sampleRows(l, V, [{ row: 1, t: 1.3, seed: 44, counter: 7 }]);
    const crowd = await sampleRows(l, V, [{ row: 0, t: 0.5, seed: 1 }, { row: 1, t: 1.3, seed: 44, counter: 7 }, { row: 2, t: 0 }]);
    expect(crowd[1]).toBe(alone[0]);
  });

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
    expect(seenP.size).toBeGreaterThan(1);
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
    const ids = await sampleRows(l, V, Array.from({ length: n }, (_, c) => ({ row: 0, t, seed: 3, counter: c })));
    for (const id of ids) counts[id]++;
    let chi2 = 0;
    for (let i = 0; i < V; i++) {
      const e = (n * w[i]!) / z;
      chi2 += (counts[i] - e) ** 2 / e;
    }
    // 5 degrees of freedom: P(chi2 > 25) < 2e-4.
    expect(chi2, `counts ${counts}`).toBeLessThan(25);
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
    // the same row padded to 700 tokens of very low logits: the kept tokens sit among the first
    // threads' elements, the others' bests bound nothing
    const padded = Float32Array.from({ length: 700 }, (_, i) => (i < V ? logits[i]! : -40 - (i % 7)));
    for (const c of cases) {
      for (const [what, row] of [['48 tokens', logits], ['padded to 700', padded]] as const) {
        it(`${c.name} (${what})`, async () => {
          const p = exactDistribution(row, c);
          const kept = [...p.keys()].filter((i) => p[i]! > 1e-9);
          expect(kept.length).toBe(c.kept);
          // The nucleus is more than the argmax, and no cut sits near a rounding edge.
          expect(kept.length).toBeGreaterThan(2);
          for (const i of kept) expect(N * p[i]!).toBeGreaterThanOrEqual(20);
          const counts = new Array<number>(row.length).fill(0);
          for (const id of await manyDraws(row, c, N, 1000 + kept.length)) counts[id]!++;
          const outside = counts.map((n, i) => (p[i]! <= 1e-9 ? n : 0)).reduce((a, b) => a + b, 0);
          expect(outside, `draws outside the kept set: ${counts}`).toBe(0);
          for (const i of kept) expect(counts[i], `token ${i} (p = ${p[i]!.toFixed(4)}) never drawn`).toBeGreaterThan(0);
          let chi2 = 0;
          for (const i of kept) chi2 += (counts[i]! - N * p[i]!) ** 2 / (N * p[i]!);
          expect(chi2, `counts ${counts}`).toBeLessThan(chiSquareQuantile(kept.length - 1, 4.753));
        });
      }
    }
  });

  // Top-k sets the list of tokens above the threads' bests decides, and those it cannot: the
  // top-k largest spread over the threads, clustered in one thread's elements (ids 256 apart),
  // k above the 256 threads (no thread best bounds it: the list takes every token, or the
  // whole row decides when they are more than SAMPLE_LIST), with top-p after
  it.each([
    ['spread over the threads', 700, 40, undefined],
    ['spread over the threads, then top-p 0.8', 700, 60, 0.8],
    ['clustered in one thread', 5000, 50, undefined],
    ['above the threads, listed', 700, 300, undefined],
    ['above the threads, over the whole row', 3000, 300, 0.9],
  ] as const)('top-k %s (V = %i, k = %i, top-p %s) follows the exact distribution', async (what, V, k, topP) => {
    const r = rng(k + V + (topP ? 1 : 0));
    const l = randomF32(r, V, 0.5);
    if (what === 'clustered in one thread') for (let i = 0; i < 19; i++) l[3 + 256 * i]! += 3;
    const o = { t: 1, topK: k, topP };
    const p = exactDistribution(l, o, 1e-5);
    const kept = [...p.keys()].filter((i) => p[i]! > 1e-9);
    if (V > SAMPLE_LIST) expect(kept.length).toBeGreaterThan(k * (topP ?? 1) * 0.5);
    const N = 8192;
    const counts = new Array<number>(V).fill(0);
    for (const id of await manyDraws(l, o, N, 77)) counts[id]!++;
    expect(counts.filter((n, i) => n > 0 && p[i]! <= 1e-9), 'draws outside the top-k set').toEqual([]);
    const { chi2, df } = groupedChiSquare(counts, p);
    expect(df).toBeGreaterThanOrEqual(6);
    expect(chi2, `counts ${counts}`).toBeLessThan(chiSquareQuantile(df, 4.753));
  });

  it('a flat nucleus wider than the list: the whole row decides, every draw stays in the top', async () => {
    const V = 3000;
    const l = Float32Array.from({ length: V }, (_, i) => (i % 2 === 0 ? 5 : -30));
    const top = new Set([...l.keys()].filter((i) => l[i] === 5));
    expect(top.size).toBeGreaterThan(SAMPLE_LIST);
    const ids = await sampleRows(l, V, Array.from({ length: 512 }, (_, c) => ({ row: 0, t: 1, topP: 0.9, seed: 5, counter: c })));
    for (const id of ids) expect(top.has(id)).toBe(true);
    expect(new Set(ids).size).toBeGreaterThan(400);
  });

  it('a nucleus wider than the list follows the exact distribution', async () => {
    const V = 4000;
    const l = randomF32(rng(404), V, 0.4);
    const o = { t: 1, topP: 0.7 };
    const p = exactDistribution(l, o, 1e-5);
    expect([...p].filter((x) => x > 0).length).toBeGreaterThan(SAMPLE_LIST);
    const N = 8192;
    const counts = new Array<number>(V).fill(0);
    for (const id of await manyDraws(l, o, N, 91)) counts[id]!++;
    expect(counts.filter((n, i) => n > 0 && p[i]! <= 1e-9), 'draws outside the nucleus').toEqual([]);
    const { chi2, df } = groupedChiSquare(counts, p);
    expect(df).toBeGreaterThanOrEqual(6);
    expect(chi2).toBeLessThan(chiSquareQuantile(df, 4.753));
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
    // rows of one dispatch keep their own masks: a masked row next to an unmasked one
    const argmax = l.indexOf(Math.max(...l));
    expect(allowed.has(argmax)).toBe(false);
    const both = await sampleRows(l, V, [
      { row: 0, t: 0, mask: one },
      { row: 0, t: 0 },
    ]);
    expect([...both]).toEqual([V - 1, argmax]);
  });
});
