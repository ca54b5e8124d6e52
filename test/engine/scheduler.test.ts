// Continuous batching without a GPU: the engine's real step loop (core.ts: scheduler, request
// lifecycle, run-ahead) driven through a fake executor that keeps what every KV page slot holds:
// each step's keys must be exactly the ones its tokens' prefixes wrote (shared prefix-cache pages
// included, after preemption and eviction), writes never touch a page another sequence reads,
// budgets and slot limits hold, every request ends with the ids the "GPU" drew for it, and no page
// leaks. Also: the prompt budget is shared, so a short request is not held behind a long prompt.
import { describe, expect, it } from 'vitest';
import type { GenerateOptions, GenerateResult } from '../../src/engine/api.js';
import { EngineCore, type InFlight, type StepExecutor } from '../../src/engine/core.js';
import { waterFill, type SchedulerOptions, type StepPlan } from '../../src/engine/scheduler.js';
import type { SeqRequest, StepOutput } from '../../src/engine/sequences.js';
import type { PreparedStep } from '../../src/engine/step-inputs.js';
import { PagePool, PrefixCache, blockHashes } from '../../src/engine/kv-pages.js';
import { rng } from '../helpers/random.js';

/** What a slot holds: a hash of the token prefix [0, pos] that wrote it (memoised per token array). */
const prefixHashes = new WeakMap<readonly number[], number[]>();
function prefixKey(tokens: readonly number[], pos: number): string {
  let hs = prefixHashes.get(tokens);
  if (!hs) prefixHashes.set(tokens, (hs = []));
  for (let i = hs.length; i <= pos; i++) hs.push(Math.imul((i ? hs[i - 1]! : 17) ^ (tokens[i]! + 0x9e3779b9), 0x85ebca6b) >>> 0);
  return `${pos}:${hs[pos]}`;
}

interface FakeFlight extends InFlight {
  ids: number[];
  rows: number;
}

/** The "GPU": KV writes and reads checked against what each slot holds, ids drawn at random. */
class FakeExecutor implements StepExecutor<FakeFlight> {
  core!: EngineCore<FakeFlight>;
  // per group: page * P + slot -> prefix key
  readonly full = new Map<number, string>();
  readonly sliding = new Map<number, string>();
  /** Every id the "GPU" has per request: the host's tokens plus the sampled ones not read back yet. */
  readonly all = new Map<GenerateOptions, number[]>();
  readonly plans: StepPlan<SeqRequest>[] = [];
  /** Called as each step completes (aborts, arrivals). */
  onFinish: (step: number) => void = () => {};
  steps = 0;
  maxTokensInStep = 0;
  readsChecked = 0;

  constructor(
    readonly o: SchedulerOptions,
    readonly r: () => number,
    readonly vocab: number,
  ) {}

  holdsRunAhead(): boolean {
    return false;
  }

  private allOf(seq: PreparedStep['plan']['entries'][number]['seq']): number[] {
    let a = this.all.get(seq.request.opts);
    if (!a) this.all.set(seq.request.opts, (a = [...seq.tokens]));
    return a;
  }

  submit(step: PreparedStep): FakeFlight {
    const { plan } = step;
    const s = this.core.scheduler;
    this.steps++;
    this.plans.push({ ...plan, entries: plan.entries.map((e) => ({ ...e })) });
    const P = this.o.pageSize;
    expect(plan.tokens).toBeLessThanOrEqual(this.o.maxBatchTokens);
    expect(s.numRunning).toBeLessThanOrEqual(this.o.maxNumSeqs);
    expect(plan.entries.reduce((n, e) => n + e.ntok, 0)).toBe(plan.tokens);
    this.maxTokensInStep = Math.max(this.maxTokensInStep, plan.tokens);
    const slots = new Set<number>();
    // pages written this step belong to the writer alone
    const writers = new Map<string, number>();
    for (const e of plan.entries) {
      const seq = e.seq;
      expect(seq.state).toBe('running');
      expect(slots.has(seq.slot)).toBe(false);
      slots.add(seq.slot);
      for (let p = e.pos0; p < e.pos0 + e.ntok; p++) {
        const b = Math.floor(p / P);
        if (s.fullPool) {
          const page = seq.full[b]!;
          expect(s.fullPool.cached[page], 'a write into a cached (shared) page').toBe(0);
          expect(s.fullPool.refs[page]).toBe(1);
          writers.set(`f${page}`, seq.id);
          this.full.set(page * P + (p % P), prefixKey(this.allOf(seq), p));
        }
        if (s.slidingPool) {
          const page = seq.sliding[b]!;
          expect(page).toBeGreaterThanOrEqual(0);
          expect(s.slidingPool.refs[page]).toBe(1);
          writers.set(`s${page}`, seq.id);
          this.sliding.set(page * P + (p % P), prefixKey(this.allOf(seq), p));
        }
      }
    }
    // every key a token attends to holds what its own prefix wrote
    for (const e of plan.entries) {
      const seq = e.seq;
      for (let q = e.pos0; q < e.pos0 + e.ntok; q++) {
        for (const [group, map, pages] of [
          ['full', this.full, seq.full],
          ['sliding', this.sliding, seq.sliding],
        ] as const) {
          if (group === 'full' ? !s.fullPool : !s.slidingPool) continue;
          const first = group === 'sliding' ? Math.max(0, q + 1 - this.o.window) : 0;
          for (let j = first; j <= q; j++) {
            // plain comparisons first: expect() per key would dominate the run time
            const page = pages[Math.floor(j / P)]!;
            if (!(page >= 0)) expect(page, `${group} page of position ${j} (seq ${seq.id}, query ${q})`).toBeGreaterThanOrEqual(0);
            const w = writers.get(`${group[0]}${page}`);
            if (w !== undefined && w !== seq.id) expect(w, `${group} page ${page} written by another sequence`).toBe(seq.id);
            const held = map.get(page * P + (j % P));
            const want = prefixKey(this.allOf(seq), j);
            if (held !== want) expect(held, `${group} key ${j} of seq ${seq.id}`).toBe(want);
            this.readsChecked++;
          }
        }
      }
    }
    // the "GPU" samples: a random id per sampled entry, known to the host when the step completes
    const ids: number[] = [];
    for (const e of plan.entries) {
      if (!e.sample) continue;
      const id = Math.floor(this.r() * this.vocab);
      this.allOf(e.seq).push(id);
      ids.push(id);
    }
    return { step, stats: { dispatches: 0, submits: 1, readbacks: 1, pipelinesCreated: 0 }, ids, rows: step.shape.rows };
  }

  async finish(f: FakeFlight): Promise<StepOutput> {
    this.onFinish(this.steps);
    return { ids: Uint32Array.from(f.ids), logits: f.step.readLogits ? new Float32Array(f.rows * this.vocab) : null };
  }
}

function opts(o: Partial<SchedulerOptions>): SchedulerOptions {
  return { maxNumSeqs: 4, maxBatchTokens: 64, pageSize: 16, context: 512, fullPages: 64, slidingPages: 24, window: 20, prefixCaching: true, ...o };
}

function setup(o: SchedulerOptions, seed: number, runAhead: boolean, vocab = 50) {
  const exec = new FakeExecutor(o, rng(seed), vocab);
  const core = new EngineCore(exec, { scheduler: o, vocab, rows: o.maxBatchTokens, maskWords: Math.ceil(vocab / 32), allLogits: true, runAhead });
  exec.core = core;
  return { exec, core };
}

function expectNoPagesHeld(core: EngineCore<FakeFlight>, what: string) {
  for (const pool of [core.scheduler.fullPool, core.scheduler.slidingPool]) {
    if (!pool) continue;
    expect(pool.inUse, `${what}: pages of ${pool.name} still held`).toBe(0);
    for (let p = 0; p < pool.size; p++) expect(pool.refs[p]).toBe(0);
  }
}

describe('continuous batching through the real step loop (fake executor)', () => {
  it('a random schedule: arrivals, aborts, shared prefixes, preemption; every request ends with its ids, no page leaks', async () => {
    for (const [seed, o] of [
      [1, opts({})],
      [2, opts({ fullPages: 14, maxNumSeqs: 6, maxBatchTokens: 40 })], // tight: preemption
      [3, opts({ slidingPages: 0, window: 0 })], // full layers only
      [4, opts({ fullPages: 0, slidingPages: 40 })], // sliding layers only
      [5, opts({ prefixCaching: false, fullPages: 30 })],
      [6, opts({ pageSize: 32, fullPages: 20, window: 70, slidingPages: 30, maxBatchTokens: 96 })],
      // planned ahead of the previous step, as the engine runs
      [7, opts({})],
      [8, opts({ fullPages: 14, maxNumSeqs: 6, maxBatchTokens: 40 })],
    ] as const) {
      const r = rng(seed);
      const { exec, core } = setup(o, seed, seed >= 7);
      const shared = Array.from({ length: 40 }, () => Math.floor(r() * 50));
      // arrivals: round i of 150 brings a request with probability 0.3
      const arrivals: { step: number; prompt: number[]; maxTokens: number; abortAt: number }[] = [];
      for (let round = 0; round < 150; round++) {
        if (r() >= 0.3) continue;
        const len = 1 + Math.floor(r() * 90);
        // half the prompts start with a shared system prompt
        const prompt = r() < 0.5 ? [...shared.slice(0, Math.min(len, shared.length)), ...Array.from({ length: Math.max(0, len - shared.length) }, () => Math.floor(r() * 50))] : Array.from({ length: len }, () => Math.floor(r() * 50));
        const maxTokens = Math.floor(r() * 30);
        const abortAt = r() < 0.1 ? round + 1 + Math.floor(r() * 20) : Infinity;
        arrivals.push({ step: round, prompt, maxTokens, abortAt });
      }
      const aborts: { at: number; ac: AbortController }[] = [];
      exec.onFinish = (step) => {
        for (const a of aborts) if (step >= a.at) a.ac.abort();
      };
      const runs: { o: GenerateOptions; prompt: number[]; done: Promise<GenerateResult> }[] = [];
      for (const a of arrivals) {
        await core.afterSteps(a.step);
        const ac = new AbortController();
        if (a.abortAt !== Infinity) aborts.push({ at: a.abortAt, ac });
        const go: GenerateOptions = { maxTokens: a.maxTokens, signal: ac.signal };
        runs.push({ o: go, prompt: a.prompt, done: core.generate(a.prompt, go) });
      }
      for (const run of runs) {
        const res = await run.done;
        const all = exec.all.get(run.o) ?? [];
        const P = run.prompt.length;
        // the lifecycle handed out exactly the ids drawn for it, and stopped where it had to
        expect(res.tokens, `seed ${seed}`).toEqual(all.slice(P, P + res.tokens.length));
        if (res.finishReason === 'length') expect(res.tokens).toHaveLength(run.o.maxTokens);
        else expect(res.finishReason).toBe('abort');
        expect(res.promptTokens).toBe(P);
      }
      expect(core.isBusy, `seed ${seed}: work left`).toBe(false);
      expectNoPagesHeld(core, `seed ${seed}`);
      expect(exec.readsChecked).toBeGreaterThan(1000);
      if (seed === 2 || seed === 8) expect(core.stats.preemptions, 'preemptions').toBeGreaterThan(0);
      if (seed === 1 || seed === 7) expect(core.stats.prefixCacheHitTokens, 'prefix cache hits').toBeGreaterThan(0);
      if (seed === 7 || seed === 8) expect(core.stats.aheadSteps).toBeGreaterThan(0);
      if (seed === 5) expect(core.stats.prefixCacheHitTokens).toBe(0);
    }
  });

  it('decode tokens come first; a long prompt alone gets the rest of the budget every step', async () => {
    const { exec, core } = setup(opts({ maxNumSeqs: 4, maxBatchTokens: 32, fullPages: 100, context: 1024 }), 7, false);
    const acs = [0, 1, 2].map(() => new AbortController());
    const decoders = acs.map((ac) => core.generate([1, 2, 3], { maxTokens: 1000, signal: ac.signal }));
    await core.afterSteps(2); // their prompts (the first one's planned as it arrived, alone)
    const longPrompt = Array.from({ length: 300 }, (_, i) => i % 50);
    const long = core.generate(longPrompt, { maxTokens: 1 });
    const longRes = await long;
    for (const ac of acs) ac.abort();
    for (const d of decoders) expect((await d).finishReason).toBe('abort');
    const withLong = exec.plans.filter((p) => p.entries.some((e) => e.seq.promptLength === 300));
    let done = 0;
    for (const p of withLong) {
      const e = p.entries.find((x) => x.seq.promptLength === 300)!;
      expect(e.ntok).toBe(Math.min(32 - 3, 300 - done)); // all but the three decode tokens
      expect(p.entries.filter((x) => x !== e).map((x) => x.ntok)).toEqual([1, 1, 1]);
      done += e.ntok;
    }
    expect(withLong).toHaveLength(Math.ceil(300 / 29));
    expect(longRes.tokens).toHaveLength(1);
    expectNoPagesHeld(core, 'end');
  });

  it('a short request arriving behind a long prompt gets its first token within a few steps; the long one still advances every step', async () => {
    for (const runAhead of [false, true]) {
      const { exec, core } = setup(opts({ maxNumSeqs: 4, maxBatchTokens: 32, fullPages: 200, context: 2048, slidingPages: 40 }), 11, runAhead);
      const longPrompt = Array.from({ length: 600 }, (_, i) => (i * 7) % 50);
      const long = core.generate(longPrompt, { maxTokens: 3 });
      await core.afterSteps(3);
      const arrivedAt = core.stats.steps;
      let firstAt = -1;
      const short = core.generate([5, 6], { maxTokens: 4, onToken: () => void (firstAt < 0 && (firstAt = core.stats.steps)) });
      const [s, l] = await Promise.all([short, long]);
      expect(s.tokens).toHaveLength(4);
      expect(l.tokens).toHaveLength(3);
      // admitted at the next step it can be planned in; its prompt is one chunk; the token is back a step later
      expect(firstAt - arrivedAt, `runAhead ${runAhead}`).toBeLessThanOrEqual(3);
      const prefill = exec.plans.filter((p) => p.entries.some((e) => e.seq.promptLength === 600 && e.pos0 < 600));
      for (const p of prefill) {
        const e = p.entries.find((x) => x.seq.promptLength === 600)!;
        expect(e.ntok).toBeGreaterThanOrEqual(Math.min(16, 600 - e.pos0));
      }
      expect(prefill.length).toBeLessThanOrEqual(Math.ceil(600 / 16));
      expectNoPagesHeld(core, `runAhead ${runAhead}`);
    }
  });

  it('the prompt budget is water-filled: equal shares, what a short prompt leaves to the others', () => {
    expect(waterFill(32, [300])).toEqual([32]);
    expect(waterFill(32, [300, 2])).toEqual([30, 2]);
    expect(waterFill(32, [300, 300])).toEqual([16, 16]);
    expect(waterFill(31, [300, 300, 5])).toEqual([13, 13, 5]);
    expect(waterFill(10, [3, 2])).toEqual([3, 2]);
    expect(waterFill(2, [5, 5, 5])).toEqual([1, 1, 0]);
    expect(waterFill(0, [5])).toEqual([0]);
  });

  it('a prompt that shares whole blocks with a finished one skips them; sliding pages must still cover the window', async () => {
    const P = 16;
    const { core } = setup(opts({ pageSize: P, window: 20, fullPages: 40, slidingPages: 40 }), 3, false);
    const prompt = Array.from({ length: 70 }, (_, i) => (i * 7) % 50);
    const a = await core.generate([...prompt], { maxTokens: 1 });
    expect(a.cachedTokens).toBe(0);
    // blocks 0..3 (64 tokens) are cached; b needs token 64 onwards
    const b = await core.generate([...prompt.slice(0, 66), 49, 48], { maxTokens: 1 });
    expect(b.cachedTokens).toBe(64);
    // prefix caching off for a sequence that wants every prompt row's logits
    let rows = 0;
    const c = await core.generate([...prompt], { maxTokens: 1, onPrefillLogits: (l) => (rows = l.length) });
    expect(c.cachedTokens).toBe(0);
    expect(rows).toBe(70 * 50);
    expectNoPagesHeld(core, 'end');
  });

  it('prefix cache lookups: chained hashes, the window rule for sliding pages, eviction of least recently used', () => {
    const full = new PagePool('full', 8);
    const sliding = new PagePool('sliding', 8);
    const cache = new PrefixCache(full, sliding, 4, 6);
    const tokens = Array.from({ length: 24 }, (_, i) => i);
    const h = blockHashes(tokens, 4);
    expect(h).toHaveLength(6);
    expect(blockHashes([...tokens.slice(0, 4), 99, ...tokens.slice(5)], 4)[3]).not.toBe(h[3]); // chained
    // blocks 0..3 cached with full pages; sliding pages only for blocks 2 and 3
    const pages = [0, 1, 2, 3].map(() => full.alloc());
    const sp = [2, 3].map(() => sliding.alloc());
    pages.forEach((p, b) => cache.insert(h[b]!, p, b >= 2 ? sp[b - 2]! : -1));
    for (const p of pages) full.release(p);
    for (const p of sp) sliding.release(p);
    expect(full.inUse).toBe(0);
    expect(full.evictableCount).toBe(4);
    // a hit at 16 tokens needs sliding pages for keys from 16 + 1 - 6 = 11: blocks 2 and 3
    expect(cache.lookup(h, 100).length).toBe(4);
    // a hit at 12 would need blocks 1..2: block 1 has no sliding page, so no shorter hit either
    expect(cache.lookup(h, 15).length).toBe(0);
    // allocating past the free pages evicts the oldest cached block first
    for (let i = 0; i < 4; i++) full.alloc();
    expect(cache.blocks).toBe(4);
    full.alloc(); // evicts block 0: nothing after it is reachable
    expect(cache.blocks).toBe(3);
    expect(cache.lookup(h, 100).length).toBe(0);
  });
});
