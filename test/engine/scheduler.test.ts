// The continuous-batching scheduler on its own (no GPU), driven by a simulated engine that keeps
// what every KV page slot holds: each step's keys must be exactly the ones its tokens' prefixes
// wrote (shared prefix-cache pages included, after preemption and eviction), writes never touch
// a page another sequence reads, budgets and slot limits hold, every request ends, and no page
// leaks.
import { describe, expect, it } from 'vitest';
import { Scheduler, Seq, type SchedulerOptions } from '../../src/engine/scheduler.js';
import { PagePool, PrefixCache, blockHashes } from '../../src/engine/kv-pages.js';
import { rng } from '../helpers/random.js';

interface Req {
  maxTokens: number;
  abortAt: number; // step at which the client leaves (Infinity: never)
  done?: string;
  /** Every id the "GPU" has, the host's tokens plus the sampled ones not read back yet. */
  all?: number[];
}

/** What a slot holds: a hash of the token prefix [0, pos] that wrote it (memoised per token array). */
const prefixHashes = new WeakMap<readonly number[], number[]>();
function prefixKey(tokens: readonly number[], pos: number): string {
  let hs = prefixHashes.get(tokens);
  if (!hs) prefixHashes.set(tokens, (hs = []));
  for (let i = hs.length; i <= pos; i++) hs.push(Math.imul((i ? hs[i - 1]! : 17) ^ (tokens[i]! + 0x9e3779b9), 0x85ebca6b) >>> 0);
  return `${pos}:${hs[pos]}`;
}

class Sim {
  readonly s: Scheduler<Req>;
  /** A step submitted and not yet completed (run-ahead). */
  private inFlight: ReturnType<Scheduler<Req>['schedule']> = null;
  // per group: page * P + slot -> prefix key
  readonly full = new Map<number, string>();
  readonly sliding = new Map<number, string>();
  steps = 0;
  maxTokensInStep = 0;
  readsChecked = 0;

  constructor(
    readonly o: SchedulerOptions,
    readonly r: () => number,
    readonly vocab = 50,
    /** Plan each step before the previous one completes, as the engine does. */
    readonly runAhead = false,
  ) {
    this.s = new Scheduler<Req>(o);
  }

  step(): boolean {
    if (!this.runAhead) {
      const plan = this.submit({});
      if (!plan) return false;
      this.finish(plan);
      return true;
    }
    this.inFlight ??= this.submit({});
    if (!this.inFlight) return false;
    const ahead = this.submit({ ahead: true });
    this.finish(this.inFlight);
    this.inFlight = ahead;
    return true;
  }

  /** Plans a step and "runs" it on the GPU: KV writes, reads checked, ids drawn. */
  private submit(opts: { ahead?: boolean }) {
    const plan = this.s.schedule(opts);
    if (!plan || !plan.entries.length) return null;
    this.steps++;
    const P = this.o.pageSize;
    expect(plan.tokens).toBeLessThanOrEqual(this.o.maxBatchTokens);
    expect(this.s.numRunning).toBeLessThanOrEqual(this.o.maxNumSeqs);
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
        if (this.s.fullPool) {
          const page = seq.full[b]!;
          expect(this.s.fullPool.cached[page], 'a write into a cached (shared) page').toBe(0);
          expect(this.s.fullPool.refs[page]).toBe(1);
          writers.set(`f${page}`, seq.id);
          this.full.set(page * P + (p % P), prefixKey(allOf(seq), p));
        }
        if (this.s.slidingPool) {
          const page = seq.sliding[b]!;
          expect(page).toBeGreaterThanOrEqual(0);
          expect(this.s.slidingPool.refs[page]).toBe(1);
          writers.set(`s${page}`, seq.id);
          this.sliding.set(page * P + (p % P), prefixKey(allOf(seq), p));
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
          if (group === 'full' ? !this.s.fullPool : !this.s.slidingPool) continue;
          const first = group === 'sliding' ? Math.max(0, q + 1 - this.o.window) : 0;
          for (let j = first; j <= q; j++) {
            // plain comparisons first: expect() per key would dominate the run time
            const page = pages[Math.floor(j / P)]!;
            if (!(page >= 0)) expect(page, `${group} page of position ${j} (seq ${seq.id}, query ${q})`).toBeGreaterThanOrEqual(0);
            const w = writers.get(`${group[0]}${page}`);
            if (w !== undefined && w !== seq.id) expect(w, `${group} page ${page} written by another sequence`).toBe(seq.id);
            const held = map.get(page * P + (j % P));
            const want = prefixKey(allOf(seq), j);
            if (held !== want) expect(held, `${group} key ${j} of seq ${seq.id}`).toBe(want);
            this.readsChecked++;
          }
        }
      }
    }
    // the "GPU" samples: a random id per sampled entry, known to the host when the step completes
    for (const e of plan.entries) if (e.sample) allOf(e.seq).push(Math.floor(this.r() * this.vocab));
    return plan;
  }

  private finish(plan: NonNullable<ReturnType<Scheduler<Req>['schedule']>>): void {
    for (const e of plan.entries) {
      if (!e.sample || e.seq.state !== 'running') continue;
      e.seq.tokens.push(allOf(e.seq)[e.seq.tokens.length]!);
      e.seq.pending--;
    }
    this.s.complete(plan);
    for (const e of plan.entries) {
      const seq = e.seq;
      if (seq.state !== 'running') continue;
      if (e.sample && seq.generated >= seq.request.maxTokens) this.end(seq, 'length');
      else if (!seq.samples && seq.confirmed === seq.tokens.length) this.end(seq, 'length');
    }
    for (const seq of [...this.s.runningSeqs(), ...this.s.waitingSeqs()]) {
      if (this.steps >= seq.request.abortAt) this.end(seq, 'abort');
    }
  }

  end(seq: Seq<Req>, why: string): void {
    this.s.finish(seq);
    seq.request.done = why;
  }
}

/** The sequence's ids as the GPU has them: the host's tokens, then any drawn but not read back. */
function allOf(seq: Seq<Req>): number[] {
  const r = seq.request;
  if (!r.all) r.all = [...seq.tokens];
  return r.all;
}

function opts(o: Partial<SchedulerOptions>): SchedulerOptions {
  return { maxNumSeqs: 4, maxBatchTokens: 64, pageSize: 16, context: 512, fullPages: 64, slidingPages: 24, window: 20, prefixCaching: true, ...o };
}

describe('continuous-batching scheduler', () => {
  it('a random schedule: arrivals, aborts, shared prefixes, preemption; every request ends, no page leaks', () => {
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
      const sim = new Sim(o, r, 50, seed >= 7);
      const shared = Array.from({ length: 40 }, () => Math.floor(r() * 50));
      const all: Seq<Req>[] = [];
      let id = 0;
      for (let round = 0; round < 400 && (round < 150 || sim.s.hasWork()); round++) {
        if (round < 150 && r() < 0.3) {
          const len = 1 + Math.floor(r() * 90);
          // half the prompts start with a shared system prompt
          const prompt = r() < 0.5 ? [...shared.slice(0, Math.min(len, shared.length)), ...Array.from({ length: Math.max(0, len - shared.length) }, () => Math.floor(r() * 50))] : Array.from({ length: len }, () => Math.floor(r() * 50));
          const maxTokens = Math.floor(r() * 30);
          const abortAt = r() < 0.1 ? sim.steps + 1 + Math.floor(r() * 20) : Infinity;
          const seq = new Seq<Req>(id++, prompt, prompt.length, maxTokens > 0, false, { maxTokens, abortAt });
          sim.s.add(seq);
          all.push(seq);
        }
        sim.step();
      }
      while (sim.step()) {
        /* drain */
      }
      expect(sim.s.hasWork(), `seed ${seed}: work left`).toBe(false);
      for (const seq of all) expect(seq.request.done, `seed ${seed}: sequence ${seq.id} never ended`).toBeDefined();
      for (const pool of [sim.s.fullPool, sim.s.slidingPool]) {
        if (!pool) continue;
        expect(pool.inUse, `seed ${seed}: pages of ${pool.name} still held`).toBe(0);
        for (let p = 0; p < pool.size; p++) expect(pool.refs[p]).toBe(0);
      }
      expect(sim.readsChecked).toBeGreaterThan(1000);
      if (seed === 2 || seed === 8) expect(sim.s.preemptions, 'preemptions').toBeGreaterThan(0);
      if (seed === 1 || seed === 7) expect(sim.s.cacheHitTokens, 'prefix cache hits').toBeGreaterThan(0);
      if (seed === 5) expect(sim.s.cacheHitTokens).toBe(0);
    }
  });

  it('decode tokens come first; a long prompt gets the rest of the budget every step', () => {
    const sim = new Sim(opts({ maxNumSeqs: 4, maxBatchTokens: 32, fullPages: 100, context: 1024 }), rng(7));
    const decoders = [0, 1, 2].map((i) => new Seq<Req>(i, [1, 2, 3], 3, true, false, { maxTokens: 1000, abortAt: Infinity }));
    for (const d of decoders) sim.s.add(d);
    sim.step(); // their prompts
    const long = new Seq<Req>(3, Array.from({ length: 300 }, (_, i) => i % 50), 300, true, false, { maxTokens: 1, abortAt: Infinity });
    sim.s.add(long);
    let steps = 0;
    while (long.computed < 300 && steps < 100) {
      const before = long.computed;
      sim.step();
      steps++;
      expect(long.computed - before).toBe(Math.min(32 - 3, 300 - before)); // all but the three decode tokens
      for (const d of decoders) expect(d.state).toBe('running');
    }
    expect(steps).toBe(Math.ceil(300 / 29));
  });

  it('a prompt that shares whole blocks with a finished one skips them; sliding pages must still cover the window', () => {
    const P = 16;
    const sim = new Sim(opts({ pageSize: P, window: 20, fullPages: 40, slidingPages: 40 }), rng(3));
    const prompt = Array.from({ length: 70 }, (_, i) => (i * 7) % 50);
    const a = new Seq<Req>(0, [...prompt], 70, true, false, { maxTokens: 1, abortAt: Infinity });
    sim.s.add(a);
    while (sim.step()) {
      /* run a to the end */
    }
    const b = new Seq<Req>(1, [...prompt.slice(0, 66), 49, 48], 68, true, false, { maxTokens: 1, abortAt: Infinity });
    sim.s.add(b);
    sim.step();
    // blocks 0..3 (64 tokens) are cached; b needs token 64 onwards
    expect(b.cachedTokens).toBe(64);
    while (sim.step()) {
      /* finish */
    }
    // prefix caching off for a sequence that wants every prompt row's logits
    const c = new Seq<Req>(2, [...prompt], 70, true, true, { maxTokens: 1, abortAt: Infinity });
    sim.s.add(c);
    sim.step();
    expect(c.cachedTokens).toBe(0);
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
