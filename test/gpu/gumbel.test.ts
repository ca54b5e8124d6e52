// Temperature sampling over the whole softmax (top_p 1, no top_k below the vocabulary, no mask) is
// a Gumbel-max draw: the unembedding's epilogue takes argmax(logit / T + noise(seed, counter, id))
// and the sampler copies it; without the unembedding's pick (the tiled head, adapters without
// atomic-vec2u-min-max) the sampler takes the same max over the row. Checked here: thousands of
// draws (one logits row each, distinct counters) against the float64 softmax by chi-square; every
// draw against the float64 recomputation of its keys; the two paths against each other; replay;
// and a step mixing Gumbel-max rows with greedy, masked, top-p and unsampled rows. Odd vocabulary
// sizes over several shards, poisoned outputs.
import { describe, expect, it } from 'vitest';
import { encodeDispatches, writeBuffer, type Dispatch, type StepShape } from '../../src/gpu/buffers.js';
import { OpContext, StepInputs } from '../../src/engine/ops/context.js';
import { unembedOps } from '../../src/engine/ops/fused.js';
import { sampleOps } from '../../src/engine/ops/sample.js';
import { noGpuErrors, poisoned, readF32, readU32, shaderVariants, submit, testGpu } from '../helpers/gpu.js';
import { randomHead, sampleRowWords, type SampleRowSpec } from '../helpers/sampler-inputs.js';
import { chiSquareQuantile, gumbelArgmax, pooledChiSquare, softmax64 } from '../helpers/sampling-ref.js';

const gpu = await testGpu();
const variants = await shaderVariants();
const EPS = 1e-5;
const POISON = 0xffffffff;

type Row = SampleRowSpec;



async function run(ctx: OpContext, ops: Dispatch[], shape: StepShape) {
  ctx.writeStep(shape);
  await noGpuErrors(gpu, () => submit(gpu, (p) => encodeDispatches(p, ops, shape)));
}

/** Poisons the sampler's outputs and resets the picks (the embedding's job in a step). */
function freshOutputs(inputs: StepInputs, samples: number, rows: number) {
  writeBuffer(gpu, inputs.sampled, 0, new Uint32Array(samples).fill(POISON));
  writeBuffer(gpu, inputs.lastIds, 0, new Uint32Array(samples).fill(POISON));
  writeBuffer(gpu, inputs.argmax, 0, new Uint32Array(2 * rows));
}

async function readIds(inputs: StepInputs, n: number): Promise<Uint32Array> {
  const ids = await readU32(gpu, inputs.sampled, n);
  expect(await readU32(gpu, inputs.lastIds, n)).toEqual(ids);
  return ids;
}

/** The sampler alone (no unembedding pick) over `logits`: its Gumbel-max pass over the row. */
async function samplerPath(ctx: OpContext, logits: GPUBuffer, V: number, R: number, rows: Row[]): Promise<Uint32Array> {
  const inputs = new StepInputs(gpu, { tokens: 1, rows: R, samples: rows.length, seqs: rows.length, vocab: V });
  for (const [i, o] of rows.entries()) if (o.mask) writeBuffer(gpu, inputs.masks, i * inputs.maskWords * 4, o.mask);
  writeBuffer(gpu, inputs.sampling, 0, sampleRowWords(rows));
  freshOutputs(inputs, rows.length, R);
  await run(ctx, sampleOps(ctx, { logits, inputs, vocab: V }), { tokens: 1, rows: R, samples: rows.length });
  const ids = await readIds(inputs, rows.length);
  inputs.destroy();
  return ids;
}

describe.each(variants)('Gumbel-max temperature sampling ($name)', ({ shaders }) => {
  const ctx = new OpContext(gpu, shaders);
  const hasPick = gpu.features.atomicVec2uMinMax;

  // Bound as in sample.test.ts: under the right sampler Pearson's statistic follows chi-square
  // with df degrees of freedom, and failing above its 1 - 1e-6 quantile makes a false alarm
  // practically impossible, while a distribution off by a total variation d adds >= 4 N d^2
  // (d = 0.1: 1600) to its mean.
  it.each([
    // [V, H, shards, temperature]
    [61, 32, 1, 1],
    [61, 32, 2, 0.6],
    [601, 48, 3, 1.4],
  ] as const)('V=%i H=%i in %i shard(s) at temperature %f: draws follow the softmax', async (V, H, nshards, t) => {
    const N = 4096;
    const seed = 7000 + V + nshards;
    const head = randomHead(gpu, V * 31 + nshards, V, H, 2, nshards);
    // N logits rows of the same token: one row per draw, each its own counter; top_k V or more is off
    const rows: Row[] = Array.from({ length: N }, (_, i) => ({ row: i, t, seed, counter: i, topK: i % 3 === 1 ? V : i % 3 === 2 ? V + 9 : 0 }));
    const inputs = new StepInputs(gpu, { tokens: 2, rows: N, samples: N, seqs: N, vocab: V });
    writeBuffer(gpu, inputs.rows, 0, new Uint32Array(N).fill(1));
    writeBuffer(gpu, inputs.sampling, 0, sampleRowWords(rows));
    const logits = poisoned(gpu, N * V * 4);
    const ops = [
      ...unembedOps(ctx, { rows: inputs.rows, x: head.x, normScale: head.scale, shards: head.shards, logits, argmax: hasPick ? { picks: inputs.argmax, samples: inputs.sampling } : undefined, cfg: { vocabSize: V, hiddenSize: H, rmsNormEps: EPS }, label: 'unembed' }),
      ...sampleOps(ctx, { logits, inputs, vocab: V, argmax: hasPick ? inputs.argmax : undefined }),
    ];
    const shape = { tokens: 2, rows: N, samples: N };
    freshOutputs(inputs, N, N);
    await run(ctx, ops, shape);
    const ids = await readIds(inputs, N);

    const all = await readF32(gpu, logits, N * V);
    const l = all.slice(0, V);
    for (const r of [1, N >> 1, N - 1]) expect(all.subarray(r * V, (r + 1) * V), `logits row ${r}`).toEqual(l);
    expect(l.every(Number.isFinite)).toBe(true);

    // each draw is the float64 Gumbel-max of its (seed, counter), where rounding cannot swap the best two
    let compared = 0;
    const wrong: string[] = [];
    for (let i = 0; i < N; i++) {
      const ref = gumbelArgmax(l, t, seed, i);
      if (ref.gap < 1e-3) continue;
      compared++;
      if (ids[i] !== ref.id) wrong.push(`counter ${i}: ${ids[i]} (want ${ref.id}, gap ${ref.gap.toFixed(4)})`);
    }
    expect(wrong, wrong.slice(0, 5).join('; ')).toEqual([]);
    expect(compared).toBeGreaterThan(0.98 * N);

    const p = softmax64(l, t);
    const counts = new Array<number>(V).fill(0);
    for (const id of ids) counts[id]!++;
    const { chi2, df } = pooledChiSquare(counts, p);
    expect(df, 'bins of the chi-square test').toBeGreaterThanOrEqual(6);
    expect(chi2, `counts ${counts}`).toBeLessThan(chiSquareQuantile(df, 4.753));

    // the same draws again: a (seed, counter) replays its token
    freshOutputs(inputs, N, N);
    await run(ctx, ops, shape);
    expect(await readIds(inputs, N)).toEqual(ids);
    // and the sampler's own pass (the tiled head, no atomics) draws the same from these logits
    expect(await samplerPath(ctx, logits, V, N, rows)).toEqual(ids);
    inputs.destroy();
  });

  it('a step mixing Gumbel-max, greedy, masked, top-p and unsampled rows, sample rows out of logits-row order', async () => {
    const [V, H, T, R] = [203, 40, 6, 5];
    const head = randomHead(gpu, 99, V, H, T, 2);
    const mask = new Uint32Array(Math.ceil(V / 32));
    const allowed = [3, 50, 51, 120, 202];
    for (const i of allowed) mask[i >>> 5]! |= 1 << (i & 31);
    // logits row 2 is nobody's (a prompt row's logits): its pick stays the plain argmax
    const rows: Row[] = [
      { row: 3, t: 0.9, seed: 11, counter: 4 },
      { row: 0, t: 0, seed: 1, counter: 0 },
      { row: 4, t: 1, seed: 5, counter: 2, mask },
      { row: 1, t: 1, seed: 8, counter: 3, topP: 0.9 },
    ];
    const inputs = new StepInputs(gpu, { tokens: T, rows: R, samples: rows.length, seqs: rows.length, vocab: V });
    writeBuffer(gpu, inputs.rows, 0, Uint32Array.from([5, 0, 2, 4, 1]));
    writeBuffer(gpu, inputs.masks, 2 * inputs.maskWords * 4, mask);
    writeBuffer(gpu, inputs.sampling, 0, sampleRowWords(rows));
    const logits = poisoned(gpu, R * V * 4);
    const ops = [
      ...unembedOps(ctx, { rows: inputs.rows, x: head.x, normScale: head.scale, shards: head.shards, logits, argmax: hasPick ? { picks: inputs.argmax, samples: inputs.sampling } : undefined, cfg: { vocabSize: V, hiddenSize: H, rmsNormEps: EPS }, label: 'unembed' }),
      ...sampleOps(ctx, { logits, inputs, vocab: V, argmax: hasPick ? inputs.argmax : undefined }),
    ];
    freshOutputs(inputs, rows.length, R);
    await run(ctx, ops, { tokens: T, rows: R, samples: rows.length });
    const ids = await readIds(inputs, rows.length);
    const all = await readF32(gpu, logits, R * V);
    const row = (r: number) => Array.from(all.subarray(r * V, (r + 1) * V));
    const argmaxOf = (l: number[]) => l.indexOf(Math.max(...l));
    const ref = gumbelArgmax(row(3), 0.9, 11, 4);
    expect(ref.gap).toBeGreaterThan(1e-3);
    expect(ids[0], 'Gumbel-max row').toBe(ref.id);
    expect(ids[1], 'greedy row').toBe(argmaxOf(row(0)));
    expect(allowed, 'masked row').toContain(ids[2]);
    // top-p 0.9 of row 1: the smallest top set holding 0.9 of the mass
    const p = softmax64(row(1), 1);
    const order = [...p.keys()].sort((a, b) => p[b]! - p[a]!);
    let cum = 0;
    const nucleus = new Set<number>();
    for (const i of order) {
      if (cum >= 0.9) break;
      nucleus.add(i);
      cum += p[i]!;
    }
    expect(nucleus.has(ids[3]!), `top-p row drew ${ids[3]}`).toBe(true);
    if (hasPick) {
      const picks = await readU32(gpu, inputs.argmax, 2 * R);
      const pick = (r: number) => ~picks[2 * r]! >>> 0;
      expect(pick(2), 'unsampled row').toBe(argmaxOf(row(2)));
      expect(pick(3), 'the Gumbel-max row keeps its draw').toBe(ref.id);
    }
    // the sampler alone agrees on the rows it decides deterministically
    const alone = await samplerPath(ctx, logits, V, R, rows);
    expect([alone[0], alone[1]]).toEqual([ids[0], ids[1]]);
    inputs.destroy();
  });
});
