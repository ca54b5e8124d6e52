// Continuous batching: which tokens of which sequences go into the next step. Host-only logic
// (no GPU): sequence slots, KV pages per sequence (kv-pages.ts), prefix-cache hits, the per-step
// token budget, preemption when pages run out.
//
// Policy, in arrival (FIFO) order:
//   1. every running sequence that is decoding feeds its one token;
//   2. running sequences still in their prompt feed the next chunk, as much as the budget allows;
//   3. waiting sequences are admitted while a slot, budget and pages are free (a prefix-cache hit
//      skips the cached blocks), and feed their first chunk.
// Decoding first keeps inter-token latency flat; a prompt always gets the rest of the budget, so a
// long prompt advances every step and is never starved. When a running sequence needs a page and
// none is free (nor evictable from the prefix cache), the newest running sequence is preempted:
// its pages are freed and it waits again at the head of the queue with its tokens so far, to be
// recomputed (mostly from the prefix cache) later; its output is unchanged, only later.
//
// Run-ahead: a step may be planned while the previous one is still on the GPU. A sequence that
// sampled in it has one `pending` token (its id only on the GPU, where the next step's embedding
// reads it); the scheduler counts it in the sequence's length. A step planned ahead never
// preempts and skips sequences that are sure to end (max tokens, context).
import { blockHashes, PagePool, PrefixCache, type CachedBlock } from './kv-pages.js';

export interface SchedulerOptions {
  maxNumSeqs: number;
  /** Tokens per step (the activation buffers are sized for it). */
  maxBatchTokens: number;
  /** Positions per KV page. */
  pageSize: number;
  /** Positions a sequence may reach. */
  context: number;
  /** Pages of the full-attention group (0: the model has no full layers). */
  fullPages: number;
  /** Pages of the sliding group (0: no sliding layers). */
  slidingPages: number;
  window: number;
  prefixCaching: boolean;
}

export type SeqState = 'waiting' | 'running' | 'finished';

/** One sequence as the scheduler sees it. The engine attaches its own request data. */
export class Seq<R = unknown> {
  state: SeqState = 'waiting';
  slot = -1;
  /** Tokens whose KV is written or on its way (scheduled): positions [0, computed). */
  computed = 0;
  /** Positions whose step has finished: their KV is written and their ids known. */
  confirmed = 0;
  /** Sampled tokens whose ids are not back on the host yet (0, or 1 while running ahead). */
  pending = 0;
  /** Tokens it may generate (the engine ends it there; a step planned ahead does not go past). */
  maxTokens = Infinity;
  /** Page per logical block, full-attention group. */
  readonly full: number[] = [];
  /** Page per logical block, sliding group (-1: dropped or never held). */
  readonly sliding: number[] = [];
  /** Chained hashes of the complete blocks of `tokens` (grown lazily). */
  hashes: string[] = [];
  /** Blocks offered to the prefix cache so far. */
  registered = 0;
  /** Prompt tokens served from the prefix cache at the first admission. */
  cachedTokens = 0;
  admissions = 0;
  preemptions = 0;

  constructor(
    readonly id: number,
    /** Prompt, then every generated token. */
    readonly tokens: number[],
    readonly promptLength: number,
    /** Whether the last prompt token's logits are sampled (false: prefill only). */
    readonly samples: boolean,
    /** No prefix-cache hit (the caller wants every prompt row's logits). */
    readonly noCache: boolean,
    readonly request: R,
  ) {}

  get generated(): number {
    return this.tokens.length - this.promptLength;
  }

  /** Tokens so far, pending ones included. */
  get length(): number {
    return this.tokens.length + this.pending;
  }

  /** Still feeding prompt (or recomputed) tokens rather than decoding. */
  get prefilling(): boolean {
    return this.computed < this.length - 1;
  }
}

export interface StepEntry<R = unknown> {
  seq: Seq<R>;
  /** Index of the entry's first token in the step. */
  tok0: number;
  ntok: number;
  /** Position of the first token. */
  pos0: number;
  /** The last token's logits are sampled. */
  sample: boolean;
}

export interface StepPlan<R = unknown> {
  entries: StepEntry<R>[];
  tokens: number;
  /** Sequences preempted while planning this step (their slots are free again). */
  preempted: Seq<R>[];
}

export class Scheduler<R = unknown> {
  readonly fullPool: PagePool | null;
  readonly slidingPool: PagePool | null;
  readonly cache: PrefixCache;
  private readonly waiting: Seq<R>[] = [];
  private readonly running: Seq<R>[] = [];
  private readonly freeSlots: number[];
  readonly maxBlocks: number;
  /** Prompt tokens served from the prefix cache, since start. */
  cacheHitTokens = 0;
  preemptions = 0;

  constructor(readonly o: SchedulerOptions) {
    if (o.maxNumSeqs < 1) throw new Error(`maxNumSeqs must be at least 1 (got ${o.maxNumSeqs})`);
    if (o.maxBatchTokens < o.maxNumSeqs) {
      throw new Error(`maxBatchTokens (${o.maxBatchTokens}) must be at least maxNumSeqs (${o.maxNumSeqs}): every running sequence decodes each step`);
    }
    this.maxBlocks = Math.ceil(o.context / o.pageSize);
    this.fullPool = o.fullPages > 0 ? new PagePool('full', o.fullPages) : null;
    this.slidingPool = o.slidingPages > 0 ? new PagePool('sliding', o.slidingPages) : null;
    if (!this.fullPool && !this.slidingPool) throw new Error('the KV cache needs pages for at least one layer group');
    this.cache = new PrefixCache(this.fullPool, this.slidingPool, o.pageSize, o.window);
    this.freeSlots = Array.from({ length: o.maxNumSeqs }, (_, i) => o.maxNumSeqs - 1 - i);
  }

  /** Positions a lone sequence can hold: its prompt plus generation must fit. */
  get capacity(): number {
    return Math.min(this.o.context, this.fullPool ? this.fullPool.size * this.o.pageSize : this.o.context);
  }

  get numRunning(): number {
    return this.running.length;
  }

  get numWaiting(): number {
    return this.waiting.length;
  }

  hasWork(): boolean {
    return this.running.length > 0 || this.waiting.length > 0;
  }

  runningSeqs(): readonly Seq<R>[] {
    return this.running;
  }

  waitingSeqs(): readonly Seq<R>[] {
    return this.waiting;
  }

  add(seq: Seq<R>): void {
    if (seq.tokens.length > this.capacity) {
      throw new Error(`a sequence of ${seq.tokens.length} tokens does not fit the KV cache (${this.capacity} positions)`);
    }
    this.insertWaiting(seq);
  }

  private insertWaiting(seq: Seq<R>): void {
    seq.state = 'waiting';
    let i = this.waiting.length;
    while (i > 0 && this.waiting[i - 1]!.id > seq.id) i--;
    this.waiting.splice(i, 0, seq);
  }

  /** Removes a sequence (finished or aborted) and returns its pages and slot. */
  finish(seq: Seq<R>): void {
    if (seq.state === 'finished') return;
    const list = seq.state === 'running' ? this.running : this.waiting;
    const i = list.indexOf(seq);
    if (i >= 0) list.splice(i, 1);
    this.releasePages(seq);
    seq.state = 'finished';
  }

  private releasePages(seq: Seq<R>): void {
    for (const p of seq.full) this.fullPool!.release(p);
    for (const p of seq.sliding) if (p >= 0) this.slidingPool!.release(p);
    seq.full.length = 0;
    seq.sliding.length = 0;
    if (seq.slot >= 0) {
      this.freeSlots.push(seq.slot);
      seq.slot = -1;
    }
  }

  private preempt(seq: Seq<R>): void {
    this.running.splice(this.running.indexOf(seq), 1);
    this.releasePages(seq);
    seq.computed = 0;
    seq.confirmed = 0;
    seq.preemptions++;
    this.preemptions++;
    this.insertWaiting(seq);
  }

  private lowBlock(pos: number): number {
    return Math.floor(Math.max(0, pos + 1 - this.o.window) / this.o.pageSize);
  }

  /**
   * Sliding pages that fall out of the window before position pos are released, except those of
   * complete blocks the prefix cache has not registered yet (a step planned ahead can get here
   * before the previous step's blocks are registered; the cache keeps their pages).
   */
  private dropSliding(seq: Seq<R>, pos: number): void {
    if (!this.slidingPool) return;
    const lo = Math.min(this.lowBlock(pos), seq.sliding.length, this.o.prefixCaching ? seq.registered : Infinity);
    for (let b = 0; b < lo; b++) {
      if (seq.sliding[b]! >= 0) {
        this.slidingPool.release(seq.sliding[b]!);
        seq.sliding[b] = -1;
      }
    }
  }

  /** New pages positions [pos0, end) need, per group. */
  private pagesNeeded(seq: Seq<R>, pos0: number, end: number): { full: number; sliding: number } {
    const blocks = Math.ceil(end / this.o.pageSize);
    let sliding = 0;
    if (this.slidingPool) {
      for (let b = this.lowBlock(pos0); b < blocks; b++) if (b >= seq.sliding.length || seq.sliding[b]! < 0) sliding++;
    }
    return { full: this.fullPool ? Math.max(0, blocks - seq.full.length) : 0, sliding };
  }

  private fits(need: { full: number; sliding: number }, reserve = 0): boolean {
    return (!this.fullPool || this.fullPool.available >= need.full + reserve) && (!this.slidingPool || this.slidingPool.available >= need.sliding);
  }

  private allocate(seq: Seq<R>, pos0: number, end: number): void {
    const blocks = Math.ceil(end / this.o.pageSize);
    if (this.fullPool) while (seq.full.length < blocks) seq.full.push(this.fullPool.alloc());
    if (this.slidingPool) {
      while (seq.sliding.length < blocks) seq.sliding.push(-1);
      for (let b = this.lowBlock(pos0); b < blocks; b++) if (seq.sliding[b]! < 0) seq.sliding[b] = this.slidingPool.alloc();
    }
  }

  /** Attaches the longest prefix-cache hit for a sequence being admitted. */
  private attachHit(seq: Seq<R>): number {
    if (!this.o.prefixCaching || seq.noCache) return 0;
    seq.hashes = blockHashes(seq.tokens, this.o.pageSize, seq.hashes);
    // at least one token is left to compute: the step that produces the next logits
    const hit: CachedBlock[] = this.cache.lookup(seq.hashes, seq.tokens.length - 1);
    const lo = hit.length ? this.lowBlock(hit.length * this.o.pageSize) : 0;
    hit.forEach((b, i) => {
      if (this.fullPool) {
        this.fullPool.retain(b.full);
        seq.full.push(b.full);
      }
      if (this.slidingPool) {
        const keep = i >= lo && b.sliding >= 0;
        if (keep) this.slidingPool.retain(b.sliding);
        seq.sliding.push(keep ? b.sliding : -1);
      }
    });
    seq.registered = hit.length;
    return hit.length * this.o.pageSize;
  }

  /**
   * Plans the next step, or null when there is nothing to run. With `ahead` the previous step is
   * still running: nothing is preempted, and sequences that will end at it are left out.
   */
  schedule(opts: { ahead?: boolean } = {}): StepPlan<R> | null {
    const entries: StepEntry<R>[] = [];
    const preempted: Seq<R>[] = [];
    let budget = this.o.maxBatchTokens;
    let tok = 0;
    const add = (seq: Seq<R>, n: number) => {
      const pos0 = seq.computed;
      const end = pos0 + n;
      const sample = end === seq.length && seq.samples;
      entries.push({ seq, tok0: tok, ntok: n, pos0, sample });
      seq.computed = end;
      if (sample) seq.pending++;
      tok += n;
      budget -= n;
    };
    // running sequences, decoding ones first, each in arrival order
    const order = [...this.running.filter((s) => !s.prefilling), ...this.running.filter((s) => s.prefilling)];
    for (const seq of order) {
      if (seq.state !== 'running') continue; // preempted for an older one in this loop
      // decoding ahead of a step that ends it (its last token, or the context): nothing to feed
      if (!seq.prefilling && (seq.generated + seq.pending >= seq.maxTokens || seq.length > this.capacity)) continue;
      const n = Math.min(seq.length - seq.computed, budget);
      if (n <= 0) continue;
      this.dropSliding(seq, seq.computed);
      const need = this.pagesNeeded(seq, seq.computed, seq.computed + n);
      if (opts.ahead && !this.fits(need)) continue;
      while (!this.fits(need)) {
        const victim = this.running.filter((s) => !entries.some((e) => e.seq === s) && s.pending === 0).at(-1);
        if (!victim || victim === seq || victim.id < seq.id) break;
        this.preempt(victim);
        preempted.push(victim);
      }
      if (!this.fits(need)) {
        // nothing newer left to preempt: this one waits (it is the newest holding pages), or,
        // with a token still in flight, skips this step
        if (seq.pending === 0) {
          this.preempt(seq);
          preempted.push(seq);
        }
        continue;
      }
      this.allocate(seq, seq.computed, seq.computed + n);
      add(seq, n);
    }
    // admissions, strictly FIFO
    while (this.waiting.length && budget > 0 && this.freeSlots.length) {
      const seq = this.waiting[0]!;
      if (preempted.includes(seq)) break; // it just lost its pages: not back in the same step
      const hit = this.attachHit(seq);
      seq.computed = hit;
      seq.confirmed = hit;
      const n = Math.min(seq.length - seq.computed, budget);
      const need = this.pagesNeeded(seq, seq.computed, seq.computed + n);
      // keep a page per running sequence for its next decode step
      if (!this.fits(need, this.running.length)) {
        this.releasePages(seq);
        seq.computed = 0;
        seq.confirmed = 0;
        seq.registered = 0;
        break;
      }
      this.waiting.shift();
      seq.slot = this.freeSlots.pop()!;
      seq.state = 'running';
      seq.admissions++;
      if (seq.admissions === 1) {
        seq.cachedTokens = hit;
        this.cacheHitTokens += hit;
      }
      this.running.push(seq);
      this.running.sort((a, b) => a.id - b.id);
      this.allocate(seq, seq.computed, seq.computed + n);
      add(seq, n);
    }
    if (!entries.length) return preempted.length ? { entries, tokens: 0, preempted } : null;
    return { entries, tokens: tok, preempted };
  }

  /**
   * After a step ran and its sampled ids were appended to `seq.tokens` (and `pending` lowered):
   * its positions are confirmed, and complete blocks with known ids join the prefix cache.
   */
  complete(plan: StepPlan<R>): void {
    for (const e of plan.entries) {
      const seq = e.seq;
      if (seq.state !== 'running') continue;
      seq.confirmed = Math.max(seq.confirmed, e.pos0 + e.ntok);
      if (!this.o.prefixCaching) continue;
      const done = Math.floor(Math.min(seq.confirmed, seq.tokens.length) / this.o.pageSize);
      if (done <= seq.registered) continue;
      seq.hashes = blockHashes(seq.tokens.slice(0, done * this.o.pageSize), this.o.pageSize, seq.hashes);
      for (let b = seq.registered; b < done; b++) {
        this.cache.insert(seq.hashes[b]!, this.fullPool ? seq.full[b]! : -1, this.slidingPool ? seq.sliding[b]! : -1);
      }
      seq.registered = done;
    }
  }
}
