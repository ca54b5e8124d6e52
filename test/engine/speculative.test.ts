// Speculative decoding on real models (Dawn on lavapipe): greedy tokens identical to plain decoding
// with n-gram proposals on the oracle models and with draft models on synthetic fixtures (a draft
// identical to the target, a target that is its draft plus layers that add nothing, a target one
// real layer deeper than its draft), alone and batched with a sequence that does not speculate;
// seeded sampling gives the same tokens; the KV cache after rejected proposals equals a plain
// run's; no page leaks.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine, type EngineOptions, type GenerateOptions } from '../../src/engine/engine.js';
import { blockHashes } from '../../src/engine/kv-pages.js';
import type { EngineResources } from '../../src/engine/setup.js';
import { DraftProposer, NgramProposer, type Proposer } from '../../src/engine/speculative/proposers.js';
import { readBuffer } from '../../src/gpu/buffers.js';
import { syntheticConfig, syntheticGpuSource } from '../../src/model/synthetic.js';
import { testGpu } from '../helpers/gpu.js';
import { ORACLE, ORACLE_MODELS } from '../helpers/oracle.js';

const gpu = await testGpu();
const BASE: EngineOptions = { gpu, context: 160, maxBatchTokens: 48, maxNumSeqs: 3, pageSize: 16 };

const mini = (layers?: number, zeroFrom?: number) => syntheticGpuSource(syntheticConfig('mini', { layers }), 1, zeroFrom);

/** A prompt that repeats itself, so the n-gram lookup finds something from the first step. */
const REPEATING = [5, 9, 2, 7, 11, 5, 9, 2, 7, 11, 5, 9, 2, 7];

/**
 * Proposes what a reference transcript (a plain run's prompt and output) says follows the
 * sequence's tokens; `corrupt(j)` turns the j-th proposed token of each step into another id.
 */
function replay(reference: number[][], corrupt: (j: number) => boolean, V: number): Proposer {
  return {
    name: 'replay',
    propose: (reqs) =>
      reqs.map((r) => {
        const ref = reference.find((t) => r.tokens.every((x, i) => t[i] === x));
        return (ref?.slice(r.tokens.length, r.tokens.length + r.k) ?? []).map((t, j) => (corrupt(j) ? (t + 1) % V : t));
      }),
  };
}

function expectNoPages(e: Engine) {
  for (const pool of [e.scheduler.fullPool, e.scheduler.slidingPool]) if (pool) expect(pool.inUse, pool.name).toBe(0);
}

async function runBoth(load: (o: EngineOptions) => Promise<Engine>, proposer: () => Proposer, runs: { prompt: number[]; o: GenerateOptions }[]) {
  const plain = await load(BASE);
  const want = await Promise.all(runs.map((r) => plain.generate(r.prompt, r.o)));
  plain.destroy();
  const spec = await load({ ...BASE, speculative: { proposer: proposer(), tokens: 4 } });
  const got = await Promise.all(runs.map((r) => spec.generate(r.prompt, r.o)));
  return { want, got, spec };
}

describe('speculative decoding on the GPU', () => {
  for (const model of ORACLE_MODELS) {
    it(`${model}: greedy tokens equal plain decoding with proposals right, half right, wrong and from n-grams, batched with a sequence that does not speculate`, async () => {
      const load = (o: EngineOptions) => Engine.load(join(ORACLE, model, 'hf'), { ...o, kvDtype: 'f32' });
      const runs = [
        { prompt: REPEATING, o: { maxTokens: 24 } },
        { prompt: [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5], o: { maxTokens: 20, speculative: false } },
        { prompt: [...REPEATING, ...REPEATING], o: { maxTokens: 18 } },
      ];
      const plain = await load(BASE);
      const want = await Promise.all(runs.map((r) => plain.generate(r.prompt, r.o)));
      const V = plain.config.vocabSize;
      plain.destroy();
      const reference = runs.map((r, i) => [...r.prompt, ...want[i]!.tokens]);
      for (const [mode, proposer] of [
        ['n-gram', new NgramProposer({ min: 1, max: 3 })],
        ['right', replay(reference, () => false, V)],
        ['half right', replay(reference, (j) => j % 2 === 1, V)],
        ['wrong', replay(reference, () => true, V)],
      ] as const) {
        const spec = await load({ ...BASE, speculative: { proposer, tokens: 4 } });
        const got = await Promise.all(runs.map((r) => spec.generate(r.prompt, r.o)));
        got.forEach((g, i) => expect(g.tokens, `${mode}, run ${i}`).toEqual(want[i]!.tokens));
        const st = spec.stats.speculative!;
        expect(st.acceptedHistogram.reduce((a, b) => a + b, 0)).toBe(st.verifications);
        if (mode !== 'n-gram') expect(st.verifications, mode).toBeGreaterThan(0);
        const rate = st.accepted / st.proposed;
        if (mode === 'right') expect(rate).toBeGreaterThanOrEqual(0.95);
        if (mode === 'half right') {
          expect(rate).toBeGreaterThan(0.05);
          expect(rate).toBeLessThan(0.8);
        }
        if (mode === 'wrong') expect(st.accepted).toBe(0);
        expectNoPages(spec);
        spec.destroy();
      }
    });
  }

  for (const [name, target, draft, check] of [
    ['a draft identical to the target accepts every proposal', () => mini(), () => mini(), (rate: number) => expect(rate).toBeGreaterThanOrEqual(0.95)],
    ['a target whose extra layers add nothing accepts every proposal of its first layers', () => mini(4, 2), () => mini(2), (rate: number) => expect(rate).toBeGreaterThanOrEqual(0.95)],
    ['a target one real layer deeper than its draft accepts part', () => mini(6), () => mini(5), (rate: number) => {
      expect(rate).toBeGreaterThan(0);
      expect(rate).toBeLessThan(0.9);
    }],
  ] as const) {
    it(`draft model: ${name}; greedy tokens equal plain decoding; stop tokens end inside runs`, async () => {
      const d = await Engine.load(draft(), { ...BASE, maxNumSeqs: 3 });
      const load = (o: EngineOptions) => Engine.load(target(), o);
      const plainRun = await (async () => {
        const e = await load(BASE);
        const r = await e.generate([1, 2, 3, 4, 5], { maxTokens: 30 });
        e.destroy();
        return r.tokens;
      })();
      const stop = plainRun[17]!;
      const firstStop = plainRun.indexOf(stop);
      const runs = [
        { prompt: [1, 2, 3, 4, 5], o: { maxTokens: 30 } },
        { prompt: [1, 2, 3, 4, 5], o: { maxTokens: 30, stopTokens: [stop] } },
        { prompt: [40, 41, 42], o: { maxTokens: 25, speculative: false } },
      ];
      const { want, got, spec } = await runBoth(load, () => new DraftProposer(d), runs);
      got.forEach((g, i) => expect(g.tokens, `run ${i}`).toEqual(want[i]!.tokens));
      expect(got[1]!.tokens).toHaveLength(firstStop + 1);
      expect(got[1]!.finishReason).toBe('stop');
      const st = spec.stats.speculative!;
      check(st.accepted / st.proposed);
      expectNoPages(spec);
      spec.destroy();
      d.destroy();
    });
  }

  it('seeded sampling: the tokens plain decoding draws, with proposals right, half right, wrong and from a draft (each position draws with its own counter)', async () => {
    const runs = [1, 2, 3].map((seed) => ({ prompt: [7, 8, 9, 10, seed], o: { maxTokens: 20, temperature: 0.8, topP: 0.95, seed } }));
    const load = (o: EngineOptions) => Engine.load(mini(4, 2), o);
    const plain = await load(BASE);
    const want = await Promise.all(runs.map((r) => plain.generate(r.prompt, r.o)));
    const V = plain.config.vocabSize;
    plain.destroy();
    const reference = runs.map((r, i) => [...r.prompt, ...want[i]!.tokens]);
    const d = await Engine.load(mini(2), BASE);
    for (const [mode, proposer] of [
      ['right', replay(reference, () => false, V)],
      ['half right', replay(reference, (j) => j % 2 === 1, V)],
      ['wrong', replay(reference, () => true, V)],
      ['greedy draft', new DraftProposer(d)],
    ] as const) {
      const spec = await load({ ...BASE, speculative: { proposer, tokens: 4 } });
      const got = await Promise.all(runs.map((r) => spec.generate(r.prompt, r.o)));
      got.forEach((g, i) => expect(g.tokens, `${mode}, seed ${i + 1}`).toEqual(want[i]!.tokens));
      const st = spec.stats.speculative!;
      expect(st.verifications, mode).toBeGreaterThan(0);
      if (mode === 'right') expect(st.accepted / st.proposed).toBeGreaterThanOrEqual(0.95);
      if (mode === 'wrong') expect(st.accepted).toBe(0);
      if (mode === 'half right') expect(st.accepted).toBeLessThan(st.proposed);
      spec.destroy();
    }
    d.destroy();
  });

  it('logprobs and penalties per verified position: the same tokens and logprobs as plain decoding', async () => {
    const o: GenerateOptions = { maxTokens: 16, logprobs: 2, presencePenalty: 0.7, frequencyPenalty: 0.3, logitBias: new Map([[12, 2]]) };
    const collect = async (e: Engine) => {
      const lps: { logprob: number; top: number[] }[] = [];
      const r = await e.generate([2, 4, 6, 8, 10, 12], { ...o, onToken: (_id, lp) => void lps.push({ logprob: lp!.logprob, top: lp!.top.map((t) => t.id) }) });
      return { tokens: r.tokens, lps };
    };
    const load = (o2: EngineOptions) => Engine.load(mini(4, 2), o2);
    const plain = await load(BASE);
    const want = await collect(plain);
    plain.destroy();
    const d = await Engine.load(mini(2), BASE);
    const spec = await load({ ...BASE, speculative: { proposer: new DraftProposer(d), tokens: 4 } });
    const got = await collect(spec);
    expect(got.tokens).toEqual(want.tokens);
    expect(got.lps.map((l) => l.top)).toEqual(want.lps.map((l) => l.top));
    got.lps.forEach((l, i) => expect(Math.abs(l.logprob - want.lps[i]!.logprob), `token ${i}`).toBeLessThan(1e-3));
    // the penalties see the proposals before each position as generated: the draft (no penalties) still agrees often
    expect(spec.stats.speculative!.verifications).toBeGreaterThan(0);
    spec.destroy();
    d.destroy();
  });

  it('the KV cache after rejected proposals equals that of plain decoding', async () => {
    const d = await Engine.load(mini(2), BASE);
    const prompt = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    const kvOf = async (e: Engine, tokens: number[]) => {
      const res = (e as unknown as { res: EngineResources }).res;
      const P = e.kvPlan.pageBytes;
      const blocks = e.scheduler.kv.cache.lookup(blockHashes(tokens, 16), tokens.length);
      const out: Float32Array[] = [];
      for (const [i, t] of e.config.layerTypes.entries()) {
        if (t !== 'full') continue;
        const [k, v] = [new Float32Array(await readBuffer(gpu, res.kv.layers[i]!.k)), new Float32Array(await readBuffer(gpu, res.kv.layers[i]!.v))];
        for (const b of blocks) for (const buf of [k, v]) out.push(buf.slice((b.full * P) / 4, ((b.full + 1) * P) / 4));
      }
      return { out, blocks: blocks.length };
    };
    const load = (o: EngineOptions) => Engine.load(mini(3), { ...o, kvDtype: 'f32' });
    const plain = await load(BASE);
    const a = await plain.generate(prompt, { maxTokens: 40 });
    const spec = await load({ ...BASE, speculative: { proposer: new DraftProposer(d), tokens: 4 } });
    const b = await spec.generate(prompt, { maxTokens: 40 });
    expect(b.tokens).toEqual(a.tokens);
    const st = spec.stats.speculative!;
    expect(st.accepted).toBeLessThan(st.proposed); // some proposals were rejected (their KV written, then overwritten)
    const all = [...prompt, ...a.tokens];
    const [ka, kb] = [await kvOf(plain, all), await kvOf(spec, all)];
    expect(ka.blocks).toBe(3); // positions 0..47: prompt and 38 generated tokens, in the prefix cache
    expect(kb.blocks).toBe(3);
    ka.out.forEach((x, i) => {
      const y = kb.out[i]!;
      let worst = 0;
      for (let j = 0; j < x.length; j++) worst = Math.max(worst, Math.abs(x[j]! - y[j]!) / (1 + Math.abs(x[j]!)));
      expect(worst, `KV slice ${i}`).toBeLessThan(1e-3);
    });
    expectNoPages(spec);
    for (const e of [plain, spec, d]) e.destroy();
  });
});
