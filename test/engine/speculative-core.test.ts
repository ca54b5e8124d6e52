// Speculative decoding through the engine's real step loop, without a GPU: a fake executor runs a
// deterministic "model" (the next token is a function of the last two fed tokens) over a KV map
// that records which fed prefix wrote each page slot. Every key a query reads must hold what its
// own prefix (proposals included) wrote, so KV written for rejected proposals is never read as if
// it were the accepted tokens'. Greedy output with n-gram and draft proposers must equal plain
// decoding of the same model, alone and batched with sequences that do not speculate, with stop
// tokens inside accepted runs, max tokens, aborts, preemption and run-ahead; no page may leak.
import { describe, expect, it } from 'vitest';
import type { GenerateOptions, GenerateResult } from '../../src/engine/api.js';
import { EngineCore, type InFlight, type StepExecutor } from '../../src/engine/core.js';
import type { SchedulerOptions } from '../../src/engine/scheduler.js';
import type { StepOutput } from '../../src/engine/sequences.js';
import type { PreparedStep } from '../../src/engine/step-inputs.js';
import { DraftProposer, NgramProposer, type DraftModel, type Proposer } from '../../src/engine/speculative/proposers.js';
import { Speculator } from '../../src/engine/speculative/speculator.js';
import { rng } from '../helpers/random.js';

const V = 40;

/** The model: mostly a function of the last token (so outputs repeat and n-grams match), sometimes of the one before. */
function model(seed: number) {
  const r = rng(seed);
  const table = Array.from({ length: V }, () => Math.floor(r() * V));
  const twist = Array.from({ length: V * V }, () => (r() < 0.15 ? 1 + Math.floor(r() * (V - 1)) : 0));
  return (prev: number, cur: number) => (table[cur]! + twist[prev * V + cur]!) % V;
}

type Model = ReturnType<typeof model>;

function greedy(f: Model, prompt: readonly number[], n: number): number[] {
  const t = [...prompt];
  for (let i = 0; i < n; i++) t.push(f(t.at(-2) ?? 0, t.at(-1)!));
  return t.slice(prompt.length);
}

function key(fed: readonly number[], p: number): string {
  return `${p}:${fed.slice(0, p + 1).join(',')}`;
}

interface Flight extends InFlight {
  ids: number[];
}

class ModelExecutor implements StepExecutor<Flight> {
  core!: EngineCore<Flight>;
  private readonly kv = new Map<string, string>();
  private readonly last = new Map<number, number>();
  reads = 0;
  verifySteps = 0;

  constructor(
    readonly o: SchedulerOptions,
    readonly f: Model,
  ) {}

  holdsRunAhead(): boolean {
    return false;
  }

  submit(step: PreparedStep): Flight {
    const { plan } = step;
    const P = this.o.pageSize;
    const ids: number[] = [];
    if (plan.entries.some((e) => e.draft.length)) this.verifySteps++;
    for (const e of plan.entries) {
      const seq = e.seq;
      expect(e.draft.length).toBeLessThanOrEqual(4);
      const fed = seq.tokens.slice(0, e.pos0);
      for (let p = e.pos0; p < e.pos0 + e.ntok; p++) {
        const d = p - seq.tokens.length;
        fed.push(d < 0 ? seq.tokens[p]! : d < e.draft.length ? e.draft[d]! : this.last.get(seq.slot)!);
      }
      for (let p = e.pos0; p < e.pos0 + e.ntok; p++) {
        const page = seq.full[Math.floor(p / P)]!;
        expect(this.core.scheduler.fullPool!.cached[page], 'a write into a shared page').toBe(0);
        this.kv.set(`${page}:${p % P}`, key(fed, p));
      }
      for (let q = e.pos0; q < e.pos0 + e.ntok; q++) {
        for (let j = 0; j <= q; j++) {
          const held = this.kv.get(`${seq.full[Math.floor(j / P)]}:${j % P}`);
          if (held !== key(fed, j)) expect(held, `key ${j} read by query ${q} of seq ${seq.id}`).toBe(key(fed, j));
          this.reads++;
        }
      }
      if (!e.sample) continue;
      const end = e.pos0 + e.ntok;
      for (let q = end - 1 - e.draft.length; q < end; q++) ids.push(this.f(fed[q - 1] ?? 0, fed[q]!));
      this.last.set(seq.slot, ids.at(-1)!);
    }
    return { step, stats: { dispatches: 1, submits: 1, readbacks: 1, pipelinesCreated: 0 }, ids };
  }

  async finish(f: Flight): Promise<StepOutput> {
    await new Promise((r) => setImmediate(r));
    return { ids: Uint32Array.from(f.ids), logits: null };
  }
}

function setup(f: Model, proposer: Proposer, o: Partial<SchedulerOptions> = {}, runAhead = true) {
  const so: SchedulerOptions = { maxNumSeqs: 4, maxBatchTokens: 64, pageSize: 16, context: 512, fullPages: 64, slidingPages: 0, window: 0, prefixCaching: true, maxRows: 4 * 5, ...o };
  const exec = new ModelExecutor(so, f);
  const speculator = new Speculator({ proposer, tokens: 4 });
  const core = new EngineCore(exec, { scheduler: so, vocab: V, rows: so.maxRows!, samples: so.maxRows, maskWords: 2, allLogits: false, runAhead, speculator });
  exec.core = core;
  return { exec, core, speculator };
}

/** A draft model running `g` greedily (g = the target's own model: every proposal is right). */
function fakeDraft(g: Model): DraftModel {
  return {
    contextLength: 512,
    async generate(prompt, o): Promise<GenerateResult> {
      await new Promise((r) => setImmediate(r));
      return { tokens: greedy(g, prompt, o.maxTokens), finishReason: 'length', promptTokens: prompt.length, cachedTokens: 0, queueMs: 0, prefillMs: 0, decodeMs: 0 };
    },
  };
}

function expectNoPages(core: EngineCore<Flight>) {
  const pool = core.scheduler.fullPool!;
  expect(pool.inUse).toBe(0);
  for (let p = 0; p < pool.size; p++) expect(pool.refs[p]).toBe(0);
}

const prompts = (r: () => number, n: number) => Array.from({ length: n }, (_, i) => Array.from({ length: 3 + ((i * 7) % 30) }, () => Math.floor(r() * V)));

describe('speculative decoding in the step loop (fake model)', () => {
  for (const [name, make] of [
    ['n-gram', (_f: Model) => new NgramProposer({ min: 1, max: 3 })],
    ['a draft identical to the target', (f: Model) => new DraftProposer(fakeDraft(f))],
    ['a perturbed draft', (_f: Model) => new DraftProposer(fakeDraft(model(99)))],
  ] as const) {
    it(`${name}: greedy tokens equal plain decoding, batched with a sequence that does not speculate; KV reads hold their own prefix; no page leaks`, async () => {
      const f = model(3);
      const { exec, core, speculator } = setup(f, make(f));
      const r = rng(5);
      const ps = prompts(r, 6);
      const runs = ps.map((p, i) => ({ p, n: 20 + i * 9, o: { maxTokens: 20 + i * 9, speculative: i !== 2 } as GenerateOptions }));
      const res = await Promise.all(runs.map((x) => core.generate(x.p, x.o)));
      res.forEach((g, i) => {
        expect(g.tokens, `request ${i}`).toEqual(greedy(f, runs[i]!.p, runs[i]!.n));
        expect(g.finishReason).toBe('length');
      });
      const st = speculator.stats;
      expect(st.verifications).toBeGreaterThan(0);
      expect(exec.verifySteps).toBeGreaterThan(0);
      expect(st.acceptedHistogram.reduce((a, b) => a + b, 0)).toBe(st.verifications);
      if (name.startsWith('a draft identical')) expect(st.accepted / st.proposed).toBe(1);
      else expect(st.accepted).toBeLessThan(st.proposed);
      if (name === 'n-gram') expect(st.accepted).toBeGreaterThan(0);
      expect(core.stats.steps).toBeLessThan(res.reduce((n, g) => Math.max(n, g.tokens.length), 0) + 40);
      expect(exec.reads).toBeGreaterThan(1000);
      expectNoPages(core);
    });
  }

  it('a stop token inside an accepted run ends the sequence on it; max tokens ends inside a run; abort ends it', async () => {
    const f = model(3);
    const { core, speculator } = setup(f, new DraftProposer(fakeDraft(f)));
    const prompt = [1, 2, 3, 4, 5];
    const plain = greedy(f, prompt, 60);
    // a token that first shows up a few tokens in: it lands inside a run of accepted proposals
    const stopAt = plain.findIndex((t, i) => i >= 2 && plain.indexOf(t) === i);
    expect(stopAt).toBeGreaterThan(0);
    const stop = await core.generate(prompt, { maxTokens: 60, stopTokens: [plain[stopAt]!] });
    expect(stop.finishReason).toBe('stop');
    expect(stop.tokens).toEqual(plain.slice(0, stopAt + 1));
    for (const n of [1, 2, 7, 13]) {
      const g = await core.generate(prompt, { maxTokens: n });
      expect(g.tokens).toEqual(plain.slice(0, n));
      expect(g.finishReason).toBe('length');
    }
    const ac = new AbortController();
    let seen = 0;
    const ab = await core.generate(prompt, { maxTokens: 60, signal: ac.signal, onToken: () => void (++seen === 9 && ac.abort()) });
    expect(ab.finishReason).toBe('abort');
    expect(ab.tokens).toEqual(plain.slice(0, ab.tokens.length));
    expect(ab.tokens.length).toBeLessThanOrEqual(9 + 4);
    // onToken returning false stops on that very token, even inside an accepted run
    let m = 0;
    const cut = await core.generate(prompt, { maxTokens: 60, onToken: () => ++m < 11 });
    expect(cut.tokens).toEqual(plain.slice(0, 11));
    expect(speculator.stats.accepted).toBeGreaterThan(10);
    expectNoPages(core);
  });

  it('preemption with proposals in flight, and without run-ahead: output unchanged, nothing leaks', async () => {
    const f = model(11);
    for (const runAhead of [true, false]) {
      const { core, speculator } = setup(f, new NgramProposer({ min: 1, max: 2 }), { fullPages: 8, maxNumSeqs: 4, maxBatchTokens: 24, maxRows: 12 }, runAhead);
      const r = rng(8);
      const ps = Array.from({ length: 5 }, () => Array.from({ length: 14 }, () => Math.floor(r() * V)));
      const res = await Promise.all(ps.map((p) => core.generate(p, { maxTokens: 40 })));
      res.forEach((g, i) => expect(g.tokens, `request ${i}`).toEqual(greedy(f, ps[i]!, 40)));
      expect(core.stats.preemptions).toBeGreaterThan(0);
      expect(speculator.stats.accepted).toBeGreaterThan(0);
      expectNoPages(core);
    }
  });

  it('a proposer that throws costs that step its proposals, not the requests', async () => {
    const f = model(3);
    let calls = 0;
    const flaky: Proposer = {
      name: 'flaky',
      propose(reqs) {
        if (++calls % 3 === 0) throw new Error('proposer broke');
        return reqs.map((q) => greedy(f, q.tokens, q.k));
      },
    };
    const logs: string[] = [];
    const so: SchedulerOptions = { maxNumSeqs: 2, maxBatchTokens: 32, pageSize: 16, context: 256, fullPages: 32, slidingPages: 0, window: 0, prefixCaching: true, maxRows: 10 };
    const exec = new ModelExecutor(so, f);
    const core = new EngineCore(exec, { scheduler: so, vocab: V, rows: 10, samples: 10, maskWords: 2, allLogits: false, runAhead: true, speculator: new Speculator({ proposer: flaky, tokens: 4 }), log: (m) => logs.push(m) });
    exec.core = core;
    const g = await core.generate([7, 8, 9], { maxTokens: 40 });
    expect(g.tokens).toEqual(greedy(f, [7, 8, 9], 40));
    expect(logs.some((l) => l.includes('the step runs without proposals'))).toBe(true);
  });
});
