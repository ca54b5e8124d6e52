// Continuous batching on the GPU: sequences run together produce exactly the tokens each produces
// alone (greedy and seeded sampling), with their logits within the f32 tolerance of the
// single-sequence path, whatever joins or leaves around them: arrivals mid-generation, aborts,
// constrained rows, prefix-cache hits, and preemption forced by a tiny page pool.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine, type EngineOptions, type GenerateOptions } from '../../src/engine/engine.js';
import { syntheticConfig, syntheticGpuSource } from '../../src/model/synthetic.js';
import { expectClose } from '../helpers/compare.js';
import { testGpu } from '../helpers/gpu.js';
import { manifest, ORACLE } from '../helpers/oracle.js';
import { rng } from '../helpers/random.js';

const gpu = await testGpu();

interface Req {
  prompt: number[];
  o: Omit<GenerateOptions, 'onToken' | 'onLogits'>;
  /** Joins when request `after[0]` has produced `after[1]` tokens. */
  after?: [number, number];
  /** The client leaves after this many tokens. */
  abortAfter?: number;
  /** Allowed ids (constrained decoding); every step gets the same mask. */
  allowed?: number[];
}

interface Out {
  tokens: number[];
  finish: string;
  logits: Float32Array[];
  cached: number;
}

function maskOf(allowed: number[], vocab: number): Uint32Array {
  const m = new Uint32Array(Math.ceil(vocab / 32));
  for (const i of allowed) m[i >>> 5]! |= 1 << (i & 31);
  return m;
}

/**
 * Runs the requests on `engine`, each joining as its `after` says; resolves with every output.
 * With `logits` every sampled row's logits come back too (which keeps the engine from running ahead).
 */
async function runAll(engine: Engine, reqs: Req[], logits = true): Promise<Out[]> {
  const outs: Out[] = reqs.map(() => ({ tokens: [], finish: '', logits: [], cached: 0 }));
  const done: Promise<void>[] = [];
  const started = new Set<number>();
  const start = (i: number) => {
    if (started.has(i)) return;
    started.add(i);
    const r = reqs[i]!;
    const ac = new AbortController();
    const mask = r.allowed ? maskOf(r.allowed, engine.config.vocabSize) : null;
    done.push(
      engine
        .generate(r.prompt, {
          ...r.o,
          signal: ac.signal,
          ...(mask ? { constraint: { next: () => mask, accept: (id: number) => expect(r.allowed).toContain(id) } } : {}),
          ...(logits ? { onLogits: (l: Float32Array) => outs[i]!.logits.push(l) } : {}),
          onToken: (id) => {
            outs[i]!.tokens.push(id);
            if (r.abortAfter !== undefined && outs[i]!.tokens.length >= r.abortAfter) ac.abort();
            reqs.forEach((q, j) => {
              if (q.after && q.after[0] === i && q.after[1] === outs[i]!.tokens.length) start(j);
            });
          },
        })
        .then((res) => {
          outs[i]!.finish = res.finishReason;
          outs[i]!.cached = res.cachedTokens;
          expect(res.tokens).toEqual(outs[i]!.tokens);
        }),
    );
  };
  reqs.forEach((r, i) => r.after === undefined && start(i));
  for (let n = 0; n < done.length; n++) await done[n];
  expect(started.size).toBe(reqs.length);
  return outs;
}

/** Each request alone on a single-sequence engine without prefix caching. */
async function alone(load: (o: EngineOptions) => Promise<Engine>, reqs: Req[]): Promise<Out[]> {
  const engine = await load({ maxNumSeqs: 1, prefixCaching: false });
  const outs: Out[] = [];
  try {
    for (const r of reqs) outs.push((await runAll(engine, [{ ...r, after: undefined }]))[0]!);
  } finally {
    engine.destroy();
  }
  return outs;
}

function compare(batched: Out[], single: Out[], atol: number) {
  batched.forEach((b, i) => {
    const s = single[i]!;
    expect(b.tokens, `request ${i} tokens`).toEqual(s.tokens);
    expect(b.finish, `request ${i} finish`).toBe(s.finish);
    b.logits.forEach((l, j) => expectClose(l, s.logits[j]!, atol, 0, `request ${i} logits of token ${j}`));
  });
}

describe('continuous batching', () => {
  it('oracle tiny-e32k4: greedy, sampled, late arrivals, an abort, a constrained row and a prefix-cache hit', async () => {
    const man = manifest('tiny-e32k4');
    const P = man.prompt_ids;
    const r = rng(42);
    const rand = (n: number) => Array.from({ length: n }, () => Math.floor(r() * 600));
    const reqs: Req[] = [
      { prompt: P, o: { maxTokens: 24 } }, // the oracle's own greedy continuation
      { prompt: rand(30), o: { maxTokens: 20, temperature: 0.9, topP: 0.9, seed: 5 } },
      { prompt: rand(45), o: { maxTokens: 12, temperature: 1.2, topK: 5, seed: 9 }, after: [0, 3] },
      { prompt: [...P.slice(0, 40), ...rand(9)], o: { maxTokens: 10 }, after: [1, 5] }, // shares 32 tokens (one page) with request 0
      { prompt: rand(20), o: { maxTokens: 30, temperature: 1, seed: 3 }, abortAfter: 4 },
      { prompt: rand(7), o: { maxTokens: 8, temperature: 1, seed: 11 }, allowed: [5, 17, 300, 301, 599], after: [0, 10] },
    ];
    const load = (o: EngineOptions) => Engine.load(join(ORACLE, 'tiny-e32k4', 'hf'), { gpu, context: 128, maxBatchTokens: 48, kvDtype: 'f32', ...o });
    const engine = await load({ maxNumSeqs: 4 });
    let batched: Out[];
    try {
      batched = await runAll(engine, reqs);
      expect(engine.stats.lastStep.submits).toBe(1);
      expect(engine.scheduler.fullPool!.inUse).toBe(0);
      expect(engine.scheduler.slidingPool!.inUse).toBe(0);
    } finally {
      engine.destroy();
    }
    expect(batched[0]!.tokens).toEqual(man.generated_ids);
    expect(batched[3]!.cached).toBe(32);
    expect(batched[4]!.finish).toBe('abort');
    expect(batched[4]!.tokens).toHaveLength(4);
    const single = await alone(load, reqs);
    compare(batched, single, Number(man.tolerances.f32.logits_atol));

    // the same without logits and without the constrained row: steps are planned ahead of the
    // previous one's readback, and every stop still lands on the exact token
    const free = reqs.filter((q) => !q.allowed).map((q) => ({ ...q, after: q.after?.[0] === 5 ? undefined : q.after }));
    // and request 1 again with its sixth token as a stop token: it ends right there
    const stopId = single[1]!.tokens[5]!;
    const stopAt = single[1]!.tokens.indexOf(stopId) + 1;
    free.push({ ...reqs[1]!, o: { ...reqs[1]!.o, stopTokens: [stopId] }, after: [0, 2] });
    const engine2 = await load({ maxNumSeqs: 4 });
    try {
      const ahead = await runAll(engine2, free, false);
      expect(engine2.stats.aheadSteps).toBeGreaterThan(10);
      ahead.slice(0, -1).forEach((o, i) => {
        const j = reqs.indexOf(reqs.filter((q) => !q.allowed)[i]!);
        expect(o.tokens, `request ${j} tokens (run-ahead)`).toEqual(single[j]!.tokens);
        expect(o.finish).toBe(single[j]!.finish);
      });
      expect(ahead.at(-1)!.tokens).toEqual(single[1]!.tokens.slice(0, stopAt));
      expect(ahead.at(-1)!.finish).toBe('stop');
      expect(engine2.scheduler.fullPool!.inUse).toBe(0);
    } finally {
      engine2.destroy();
    }
  });

  it('synthetic:mini with a page pool too small for all: preemption recomputes, outputs unchanged', async () => {
    const c = syntheticConfig('mini');
    const r = rng(7);
    const reqs: Req[] = Array.from({ length: 6 }, (_, i) => ({
      prompt: Array.from({ length: 20 + 13 * i }, () => Math.floor(r() * c.vocabSize)),
      o: { maxTokens: 40, temperature: i % 2 ? 0 : 0.8, seed: 100 + i },
      ...(i >= 3 ? { after: [i - 3, 2] as [number, number] } : {}),
    }));
    // a page is 16 positions x 64 dims x 2 bytes per pool (K, V) and layer; the sliding layer takes
    // 36 pages, the full layer gets 12: four sequences of ~100 positions cannot all fit
    const page = 16 * 64 * 2;
    const load = (o: EngineOptions) =>
      Engine.load(syntheticGpuSource(c, 5), { gpu, context: 200, maxBatchTokens: 64, pageSize: 16, kvMemory: (36 + 12) * 2 * page, ...o });
    const engine = await load({ maxNumSeqs: 4 });
    let batched: Out[];
    try {
      expect([engine.kvPlan.slidingPages, engine.kvPlan.fullPages]).toEqual([36, 12]);
      batched = await runAll(engine, reqs);
      expect(engine.stats.preemptions).toBeGreaterThan(0);
      expect(engine.scheduler.fullPool!.inUse).toBe(0);
    } finally {
      engine.destroy();
    }
    compare(batched, await alone((o) => load({ ...o, kvMemory: undefined }), reqs), 2e-4);
  });
});
