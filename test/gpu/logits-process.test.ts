// Logits processing around the GPU sampler (logits_process, logprobs_pick) against float64
// references: the logprobs of the raw row (normaliser, the sampled token's, the top N in rank
// order), logit bias and repetition / presence / frequency penalty entries applied to the row the
// sampler then draws from (greedy picks and a chi-square test of the biased, penalised, min-p cut
// distribution), on odd vocabulary sizes, with the outputs poisoned before the kernels run.
import { describe, expect, it } from 'vitest';
import { encodeDispatches, uploadBuffer, writeBuffer, type Dispatch } from '../../src/gpu/buffers.js';
import { LOGPROB_WORDS, NO_GIVEN, NO_LOGPROBS, OpContext, PROC_ENTRY_WORDS, PROC_ROW_WORDS, SAMPLE_ROW_WORDS, StepInputs } from '../../src/engine/ops/context.js';
import { logitsProcessOps } from '../../src/engine/ops/logits-process.js';
import { sampleOps } from '../../src/engine/ops/sample.js';
import { noGpuErrors, readF32, readU32, shaderVariants, submit, testGpu } from '../helpers/gpu.js';
import { randomF32, rng } from '../helpers/random.js';
import { chiSquareQuantile, logSoftmax64 } from '../helpers/sampling-ref.js';

const gpu = await testGpu();
const variants = await shaderVariants();

interface Proc {
  row: number;
  top: number;
  minP?: number;
  entries?: { id: number; add: number; rep: number }[];
  /** A prompt row: no draw; the logprob of this id is reported. */
  given?: number;
}
interface Draw {
  row: number;
  t: number;
  counter: number;
  /** Index into procs, or none. */
  proc?: number;
}

/** One step of the head's tail: logits_process, the sampler, logprobs_pick; returns ids, the processed logits and the logprobs words. */
async function run(ctx: OpContext, logits: Float32Array, V: number, draws: Draw[], procs: Proc[]) {
  const R = logits.length / V;
  const S = draws.length;
  const inputs = new StepInputs(gpu, { tokens: 1, rows: R, samples: S, seqs: Math.max(1, S), vocab: V });
  const logitsBuf = uploadBuffer(gpu, logits, 'logits');
  const proc = logitsProcessOps(ctx, { logits: logitsBuf, inputs, vocab: V });
  const ops: Dispatch[] = [proc.before, ...sampleOps(ctx, { logits: logitsBuf, inputs, vocab: V }), proc.after];
  const sw = new Uint32Array(S * SAMPLE_ROW_WORDS);
  const sf = new Float32Array(sw.buffer);
  const ones = new Uint32Array(inputs.maskWords).fill(0xffffffff);
  draws.forEach((d, i) => {
    const w = i * SAMPLE_ROW_WORDS;
    sw.set([d.row, i, 77, d.counter], w);
    sf[w + 4] = d.t;
    sf[w + 5] = 1;
    sw[w + 6] = 0;
    // changed logits take the sampler's full path, as the engine marks them
    sw[w + 7] = 1;
    writeBuffer(gpu, inputs.masks, i * inputs.maskWords * 4, ones);
  });
  const pw = new Uint32Array(procs.length * PROC_ROW_WORDS);
  const pf = new Float32Array(pw.buffer);
  const ew: number[] = [];
  procs.forEach((p, r) => {
    const w = r * PROC_ROW_WORDS;
    const sample = p.given === undefined ? draws.findIndex((d) => d.proc === r) : 0xffffffff;
    pw.set([sample, p.row, p.entries?.length ?? 0, ew.length / PROC_ENTRY_WORDS, p.top], w);
    pf[w + 5] = p.minP ?? 0;
    pf[w + 6] = p.given === undefined ? draws[sample]!.t : 0;
    pw[w + 7] = p.given ?? NO_GIVEN;
    for (const e of p.entries ?? []) {
      const f = new Float32Array([e.add, e.rep, Number.NaN]);
      ew.push(e.id, ...new Uint32Array(f.buffer));
    }
  });
  writeBuffer(gpu, inputs.sampling, 0, sw);
  if (procs.length) writeBuffer(gpu, inputs.procRows, 0, pw);
  if (ew.length) writeBuffer(gpu, inputs.procEntries, 0, Uint32Array.from(ew));
  // poisoned outputs
  writeBuffer(gpu, inputs.sampled, 0, new Uint32Array(S).fill(0xffffffff));
  writeBuffer(gpu, inputs.logprobs, 0, new Uint32Array(Math.max(S, procs.length) * LOGPROB_WORDS).fill(0x7fc00000));
  const shape = { tokens: 1, rows: R, samples: S, processRows: procs.length };
  ctx.writeStep(shape);
  await noGpuErrors(gpu, () => submit(gpu, (p) => encodeDispatches(p, ops, shape)));
  const ids = await readU32(gpu, inputs.sampled, S);
  const processed = await readF32(gpu, logitsBuf, R * V);
  const lpWords = await readU32(gpu, inputs.logprobs, Math.max(1, procs.length) * LOGPROB_WORDS);
  inputs.destroy();
  logitsBuf.destroy();
  return { ids, processed, lp: { u: lpWords, f: new Float32Array(lpWords.buffer) } };
}

/** The processed row in float64: bias and penalties, then min-p at temperature t. */
function processRow(raw: Float32Array, p: Proc, t: number): Float64Array {
  const out = Float64Array.from(raw);
  for (const e of p.entries ?? []) {
    const v = raw[e.id]!;
    out[e.id] = (v > 0 ? v / e.rep : v * e.rep) + e.add;
  }
  if (p.minP && t > 0) {
    const m = Math.max(...out);
    for (let i = 0; i < out.length; i++) if (Math.exp((out[i]! - m) / t) < p.minP) out[i] = -Infinity;
  }
  return out;
}

describe.each(variants)('logits processing ($name)', ({ shaders }) => {
  const ctx = new OpContext(gpu, shaders);

  it.each([301, 4099])('V=%i: logprobs of the raw rows (top 0, 3, 20), bias and penalties change the greedy pick, not the logprobs', async (V) => {
    const r = rng(V);
    const R = 4;
    const logits = randomF32(r, R * V, 3);
    const row = (i: number) => logits.subarray(i * V, (i + 1) * V);
    const argmax = (x: ArrayLike<number>) => Array.from(x).reduce((b, v, i, a) => (v > a[b]! ? i : b), 0);
    // row 2: the bias lifts a low token above all; the repetition penalty sinks the winner
    const low = argmax(row(2).map((v) => -v));
    const win3 = argmax(row(3));
    const procs: Proc[] = [
      { row: 0, top: 0 },
      { row: 1, top: 3 },
      { row: 2, top: 20, entries: [{ id: low, add: 100, rep: 1 }, { id: (low + 1) % V, add: -0.5, rep: 1.3 }] },
      { row: 3, top: NO_LOGPROBS, entries: [{ id: win3, add: -1, rep: 4 }] },
    ];
    const draws: Draw[] = [
      { row: 0, t: 0, counter: 0, proc: 0 },
      { row: 1, t: 1, counter: 5, proc: 1 },
      { row: 2, t: 0, counter: 0, proc: 2 },
      { row: 3, t: 0, counter: 0, proc: 3 },
    ];
    const { ids, processed, lp } = await run(ctx, logits, V, draws, procs);
    expect(ids[0]).toBe(argmax(row(0)));
    expect(ids[2]).toBe(low);
    const want3 = processRow(row(3), procs[3]!, 0);
    expect(ids[3]).toBe(argmax(want3));
    expect(ids[3]).not.toBe(win3);
    for (const i of [2, 3]) {
      const want = processRow(row(i), procs[i]!, 0);
      for (let j = 0; j < V; j++) expect(Math.abs(processed[i * V + j]! - want[j]!), `row ${i} logit ${j}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want[j]!)));
    }
    for (const i of [0, 1, 2]) {
      const ls = logSoftmax64(row(i));
      const w = i * LOGPROB_WORDS;
      const top = Math.min(procs[i]!.top, 20);
      expect(lp.u[w + 1], `row ${i} chosen id`).toBe(ids[i]);
      expect(Math.abs(lp.f[w + 2]! - ls[ids[i]!]!), `row ${i} chosen logprob`).toBeLessThan(1e-4);
      expect(lp.u[w + 3]).toBe(top);
      const order = [...ls.keys()].sort((a, b) => ls[b]! - ls[a]!).slice(0, top);
      expect(Array.from({ length: top }, (_, j) => lp.u[w + 4 + 2 * j])).toEqual(order);
      order.forEach((id, j) => expect(Math.abs(lp.f[w + 5 + 2 * j]! - ls[id]!)).toBeLessThan(1e-4));
    }
  });

  it.each([301, 4099])('V=%i: prompt rows report the given token\'s logprob and the top ones, beside sampled rows', async (V) => {
    const r = rng(V + 1);
    const R = 3;
    const logits = randomF32(r, R * V, 3);
    const row = (i: number) => logits.subarray(i * V, (i + 1) * V);
    const given = [Math.floor(r() * V), Math.floor(r() * V)];
    const procs: Proc[] = [
      { row: 0, top: 5, given: given[0] },
      { row: 1, top: 0, given: given[1] },
      { row: 2, top: 2 },
    ];
    const { ids, lp } = await run(ctx, logits, V, [{ row: 2, t: 0, counter: 0, proc: 2 }], procs);
    for (const i of [0, 1, 2]) {
      const ls = logSoftmax64(row(i));
      const w = i * LOGPROB_WORDS;
      const id = i < 2 ? given[i]! : ids[0]!;
      expect(lp.u[w + 1], `row ${i} id`).toBe(id);
      expect(Math.abs(lp.f[w + 2]! - ls[id]!), `row ${i} logprob`).toBeLessThan(1e-4);
      const top = procs[i]!.top;
      expect(lp.u[w + 3]).toBe(top);
      const order = [...ls.keys()].sort((a, b) => ls[b]! - ls[a]!).slice(0, top);
      expect(Array.from({ length: top }, (_, j) => lp.u[w + 4 + 2 * j])).toEqual(order);
    }
  });

  it('the sampled frequencies follow the biased, penalised, min-p cut distribution (chi-square)', async () => {
    const V = 67;
    const r = rng(5);
    const raw = randomF32(r, V, 1.5);
    const t = 0.8;
    const proc: Proc = {
      row: 0,
      top: 2,
      minP: 0.04,
      entries: [
        { id: 3, add: 1.5, rep: 1 },
        { id: 10, add: -0.7, rep: 1.5 },
        { id: 11, add: 0, rep: 0.6 },
        { id: 40, add: 2.2, rep: 2 },
      ],
    };
    const want = processRow(raw, proc, t);
    const m = Math.max(...want);
    const w = want.map((v) => Math.exp((v - m) / t));
    const z = w.reduce((a, b) => a + b, 0);
    const p = w.map((v) => v / z);
    const counts = new Float64Array(V);
    const N = 4096;
    const per = 1024;
    for (let rep = 0; rep < N / per; rep++) {
      // the processed row is row 0; the other draws read it after the first draw's processing
      const draws: Draw[] = Array.from({ length: per }, (_, i) => ({ row: 0, t, counter: rep * per + i, ...(i === 0 ? { proc: 0 } : {}) }));
      const { ids } = await run(ctx, raw, V, draws, [proc]);
      for (const id of ids) counts[id]!++;
    }
    // min-p's cut tokens are never drawn
    for (let i = 0; i < V; i++) if (p[i] === 0) expect(counts[i], `token ${i} was cut by min-p`).toBe(0);
    const kept = [...p.keys()].filter((i) => p[i]! > 0);
    expect(kept.length).toBeGreaterThan(5);
    expect(kept.length).toBeLessThan(V);
    let chi2 = 0;
    for (const i of kept) chi2 += (counts[i]! - N * p[i]!) ** 2 / (N * p[i]!);
    // P(chi2 > bound) ~ 1e-4 under the right distribution
    expect(chi2).toBeLessThan(chiSquareQuantile(kept.length - 1, 3.72));
  });
});
