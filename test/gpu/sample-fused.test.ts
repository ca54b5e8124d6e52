// The sampler after the fused unembedding (its picks, as decoding runs it): a top-p row starts
// from the unembedding's Gumbel-max pick, which is the draw when it lies in the nucleus, else the
// sampler draws over the nucleus itself; top-k and masked rows take the sampler's own passes.
// Checked: thousands of draws (one logits row each, distinct counters) against the float64
// distribution by chi-square at temperatures 0.3, 1 and 2, top-p values the pick usually meets and
// ones it often misses; rows of one slot with different counters (speculative decoding samples
// several rows of a sequence in one step) drawing independently; replay; greedy rows equal to the
// argmax of the logits as written. Odd vocabulary sizes over shards, poisoned outputs.
import { describe, expect, it } from 'vitest';
import { encodeDispatches, writeBuffer, type Dispatch, type StepShape } from '../../src/gpu/buffers.js';
import { OpContext, StepInputs } from '../../src/engine/ops/context.js';
import { unembedOps } from '../../src/engine/ops/fused.js';
import { sampleOps } from '../../src/engine/ops/sample.js';
import { noGpuErrors, poisoned, readF32, readU32, shaderVariants, submit, testGpu } from '../helpers/gpu.js';
import { randomHead, sampleRowWords, type SampleRowSpec } from '../helpers/sampler-inputs.js';
import { chiSquareQuantile, groupedChiSquare } from '../helpers/sampling-ref.js';

const gpu = await testGpu();
const variants = await shaderVariants();
const EPS = 1e-5;
const POISON = 0xffffffff;

type Row = SampleRowSpec;


/** softmax(l / t) in float64 cut to the top_k largest, then to the smallest top set holding top_p (no cut within 1e-5 of an edge). */
function exact(l: ArrayLike<number>, o: { t: number; topK?: number; topP?: number }): Float64Array {
  const order = Array.from({ length: l.length }, (_, i) => i).sort((a, b) => l[b]! - l[a]! || a - b);
  let keep = o.topK ? order.slice(0, o.topK) : order;
  const w = (i: number) => Math.exp((l[i]! - l[order[0]!]!) / o.t);
  if (o.topP !== undefined && o.topP < 1) {
    const z = keep.reduce((a, i) => a + w(i), 0);
    let cum = 0;
    let n = 0;
    let before = 0;
    while (cum < o.topP) {
      before = cum;
      cum += w(keep[n++]!) / z;
    }
    // the last kept token crosses top_p clear of f32 rounding on either side
    if (cum - o.topP < 1e-5 || o.topP - before < 1e-5) throw new Error(`top_p ${o.topP} falls on a rounding edge; change the test's head`);
    keep = keep.slice(0, n);
  }
  const z = keep.reduce((a, i) => a + w(i), 0);
  const p = new Float64Array(l.length);
  for (const i of keep) p[i] = w(i) / z;
  return p;
}


describe.each(variants)('sampling after the fused unembedding ($name)', ({ shaders }) => {
  const ctx = new OpContext(gpu, shaders);
  const hasPick = gpu.features.atomicVec2uMinMax;

  /** N logits rows of token 1 through the head and the sampler; the draws and the (shared) logits row. */
  async function draws(V: number, H: number, nshards: number, rows: Row[], spread?: number) {
    const N = rows.length;
    const head = randomHead(gpu, V * 13 + nshards, V, H, 2, nshards, spread);
    const inputs = new StepInputs(gpu, { tokens: 2, rows: N, samples: N, seqs: N, vocab: V });
    writeBuffer(gpu, inputs.rows, 0, new Uint32Array(N).fill(1));
    writeBuffer(gpu, inputs.sampling, 0, sampleRowWords(rows));
    for (const [i, o] of rows.entries()) if (o.mask) writeBuffer(gpu, inputs.masks, (o.slot ?? i) * inputs.maskWords * 4, o.mask);
    const logits = poisoned(gpu, N * V * 4);
    const ops: Dispatch[] = [
      ...unembedOps(ctx, { rows: inputs.rows, x: head.x, normScale: head.scale, shards: head.shards, logits, argmax: hasPick ? { picks: inputs.argmax, samples: inputs.sampling } : undefined, cfg: { vocabSize: V, hiddenSize: H, rmsNormEps: EPS }, label: 'unembed' }),
      ...sampleOps(ctx, { logits, inputs, vocab: V, argmax: hasPick ? inputs.argmax : undefined }),
    ];
    const shape: StepShape = { tokens: 2, rows: N, samples: N };
    const once = async () => {
      writeBuffer(gpu, inputs.sampled, 0, new Uint32Array(N).fill(POISON));
      writeBuffer(gpu, inputs.argmax, 0, new Uint32Array(2 * N));
      ctx.writeStep(shape);
      await noGpuErrors(gpu, () => submit(gpu, (p) => encodeDispatches(p, ops, shape)));
      return readU32(gpu, inputs.sampled, N);
    };
    const ids = await once();
    const again = await once();
    const l = await readF32(gpu, logits, V);
    expect(l.every(Number.isFinite)).toBe(true);
    inputs.destroy();
    return { ids, again, l };
  }

  function expectDistribution(ids: Uint32Array, p: Float64Array) {
    const counts = new Array<number>(p.length).fill(0);
    for (const id of ids) counts[id]!++;
    expect(counts.filter((n, i) => n > 0 && p[i]! === 0), 'draws outside the kept set').toEqual([]);
    const { chi2, df } = groupedChiSquare(counts, p);
    expect(df, 'bins of the chi-square test').toBeGreaterThanOrEqual(3);
    expect(chi2, `counts ${counts.filter((n) => n > 0)}`).toBeLessThan(chiSquareQuantile(df, 4.753));
  }

  // top-p 0.95 keeps the unembedding's pick most of the time, 0.5 and 0.3 miss it often (the
  // sampler's own draw over the nucleus then)
  it.each([
    // [V, H, shards, temperature, top_p, weight spread (logits spread with it)]
    [613, 48, 1, 1, 0.95, 0.3],
    [613, 48, 2, 1, 0.5, 0.3],
    [1031, 40, 3, 0.3, 0.6, 0.09],
    [1031, 40, 1, 2, 0.3, 0.3],
    [257, 32, 2, 2, 0.9, 0.3],
  ] as const)('V=%i H=%i in %i shard(s), temperature %f, top-p %f: draws follow the nucleus', async (V, H, nshards, t, topP, spread) => {
    const N = 4096;
    const rows: Row[] = Array.from({ length: N }, (_, i) => ({ row: i, slot: i, t, seed: 4242 + V, counter: i, topP }));
    const { ids, again, l } = await draws(V, H, nshards, rows, spread);
    expect(again, 'a (seed, counter) replays its token').toEqual(ids);
    expectDistribution(ids, exact(l, { t, topP }));
  });

  it.each([
    ['top-k 20', { topK: 20 }],
    ['top-k 300, top-p 0.8', { topK: 300, topP: 0.8 }],
  ] as const)('%s after the unembedding follows the exact distribution', async (_, o) => {
    const [V, H, N, t] = [1500, 40, 4096, 1];
    const rows: Row[] = Array.from({ length: N }, (_, i) => ({ row: i, slot: i, t, seed: 9, counter: i, ...o }));
    const { ids, l } = await draws(V, H, 2, rows, 0.12);
    expectDistribution(ids, exact(l, { t, ...o }));
  });

  it('rows of one slot with different counters draw independently, as rows of their own slots do', async () => {
    const [V, H, N] = [613, 48, 4096];
    // pairs of rows of one slot (counters 2s and 2s + 1), half of them top-p, half over the whole softmax
    const rows: Row[] = Array.from({ length: N }, (_, i) => ({ row: i, slot: i >> 1, t: 1, seed: 77, counter: i, topP: i % 4 < 2 ? 0.7 : undefined }));
    const shared = await draws(V, H, 1, rows);
    const own = await draws(V, H, 1, rows.map((o, i) => ({ ...o, slot: i })));
    // a draw depends on its seed and counter, not on its slot or neighbours
    expect(shared.ids).toEqual(own.ids);
    const first = (o: number) => Array.from({ length: N / 4 }, (_, q) => shared.ids[4 * q + o]!);
    // the two rows of a slot do not repeat each other
    const same = (a: number[], b: number[]) => a.filter((x, i) => x === b[i]).length;
    const pNucleus = exact(shared.l, { t: 1, topP: 0.7 });
    const pAll = exact(shared.l, { t: 1 });
    const collide = (p: Float64Array) => p.reduce((a, x) => a + x * x, 0);
    // matches between paired draws: binomial(N/4, sum p^2) if independent; identical draws would match every time
    for (const [a, b, p] of [[0, 1, pNucleus], [2, 3, pAll]] as const) {
      const n = N / 4;
      const mean = n * collide(p);
      expect(same(first(a), first(b))).toBeLessThan(mean + 6 * Math.sqrt(mean) + 5);
    }
    expectDistribution(Uint32Array.from([...first(0), ...first(1)]), pNucleus);
    expectDistribution(Uint32Array.from([...first(2), ...first(3)]), pAll);
  });

  it('greedy rows pick the argmax of the logits as written; masked rows keep to their masks', async () => {
    const [V, H] = [1031, 40];
    const mask = new Uint32Array(Math.ceil(V / 32));
    const allowed = [5, 77, 78, 300, 512, 1030];
    for (const i of allowed) mask[i >>> 5]! |= 1 << (i & 31);
    const rows: Row[] = [
      { row: 0, slot: 0, t: 0, seed: 1, counter: 0 },
      { row: 1, slot: 1, t: 0, seed: 1, counter: 0, mask },
      { row: 2, slot: 2, t: 1, seed: 3, counter: 5, mask, topP: 0.9 },
      { row: 3, slot: 3, t: 0.7, seed: 3, counter: 6, mask, topK: 2 },
      { row: 4, slot: 4, t: 1.5, seed: 3, counter: 7, mask },
    ];
    const { ids, l } = await draws(V, H, 3, rows);
    const argmaxOf = (idx: number[]) => idx.reduce((b, i) => (l[i]! > l[b]! ? i : b), idx[0]!);
    expect(ids[0], 'greedy').toBe(argmaxOf([...l.keys()]));
    expect(ids[1], 'masked greedy').toBe(argmaxOf(allowed));
    for (const k of [2, 3, 4]) expect(allowed, `masked row ${k}`).toContain(ids[k]);
    const top2 = [...allowed].sort((a, b) => l[b]! - l[a]!).slice(0, 2);
    expect(top2).toContain(ids[3]);
  });
});
