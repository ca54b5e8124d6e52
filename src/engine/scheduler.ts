// Continuous batching: which tokens of which sequences go into the next step. Host-only logic
// (no GPU): sequence slots, the per-step token budget, admission and preemption; the pages each
// sequence holds are the block manager's (kv-pages.ts KvBlockManager), asked through
// computedBlocks / allocate / free.
//
// Policy, in arrival (FIFO) order:
//   1. every running sequence that is decoding feeds its one token;
//   2. the rest of the budget is shared by the prompts: running sequences still in their prompt
//      and waiting ones admitted now (FIFO, while a slot, budget and pages are free; a prefix-cache
//      hit skips the cached blocks). Each gets an equal share (water-filling: what a short prompt
//      leaves goes to the others), so a short request's first token does not wait for a long
//      prompt's whole prefill, and a long prompt still advances every step; budget left over
//      after admission (a blocked admission) goes to the prompts in arrival order.
// Decoding first keeps inter-token latency flat. When a running sequence needs a page and none is
// free (nor evictable from the prefix cache), the newest running sequence is preempted: its pages
// are freed and it waits again at the head of the queue with its tokens so far, to be recomputed
// (mostly from the prefix cache) later; its output is unchanged, only later.
//
// Run-ahead: a step may be planned while the previous one is still on the GPU. A sequence that
// sampled in it has one `pending` token (its id only on the GPU, where the next step's embedding
// reads it); the scheduler counts it in the sequence's length. A step planned ahead never
// preempts and skips sequences that are sure to end (max tokens, context).
//
// Speculative decoding: a decoding sequence with proposed tokens (Seq.draft, set before a step that
// is not planned ahead) feeds its last token plus up to k of them in one entry, every one of
// those positions sampled. After the step the longest agreeing prefix is kept (complete() moves
// `computed` back to it; the KV written past it is overwritten by the next step, so nothing is
// copied). Proposals take what is left of the token budget after every decoding sequence's own
// token, and of the spare sampled rows (maxRows beyond one per sequence).
import { KvBlockManager, type BlockTable, type KvBlockOptions, type PagePool } from './kv-pages.js';

export interface SchedulerOptions extends KvBlockOptions {
  maxNumSeqs: number;
  /** Tokens per step (the activation buffers are sized for it). */
  maxBatchTokens: number;
  /** Positions a sequence may reach. */
  context: number;
  /** Sampled rows a step may hold (default maxNumSeqs); the rows beyond one per sequence carry proposals. */
  maxRows?: number;
  /** Logits rows a step may give to prompt positions of sequences that want prompt logprobs (default 0). */
  promptRows?: number;
}

export type SeqState = 'waiting' | 'running' | 'finished';

export interface SeqInit<R> {
  id: number;
  /** The prompt (copied: generated tokens are appended to the sequence's own array). */
  prompt: readonly number[];
  /** Whether the last prompt token's logits are sampled (false: prefill only). */
  generates: boolean;
  /** Tokens it may generate (the engine ends it there; a step planned ahead does not go past). */
  maxTokens?: number;
  /** No prefix-cache hit (the caller wants every prompt row's logits). */
  noCache?: boolean;
  /** Every prompt position needs a logits row (prompt logprobs): its prompt chunks are bounded by SchedulerOptions.promptRows. */
  promptRows?: boolean;
  request: R;
}

/** One sequence as the scheduler sees it. The engine attaches its own request data. */
export class Seq<R = unknown> implements BlockTable {
  state: SeqState = 'waiting';
  slot = -1;
  /** Tokens whose KV is written or on its way (scheduled): positions [0, computed). */
  computed = 0;
  /** Positions whose step has finished: their KV is written and their ids known. */
  confirmed = 0;
  /** Sampled tokens whose ids are not back on the host yet (0, or 1 while running ahead). */
  pending = 0;
  readonly id: number;
  /** Prompt, then every generated token. */
  readonly tokens: number[];
  readonly promptLength: number;
  readonly generates: boolean;
  readonly maxTokens: number;
  readonly noCache: boolean;
  readonly promptRows: boolean;
  readonly request: R;
  readonly full: number[] = [];
  readonly sliding: number[] = [];
  hashes: string[] = [];
  registered = 0;
  /** Proposed next tokens for the next step to verify (speculative decoding); the scheduler takes them. */
  draft: number[] = [];
  /** Prompt tokens served from the prefix cache at the first admission. */
  cachedTokens = 0;
  admissions = 0;

  constructor(o: SeqInit<R>) {
    this.id = o.id;
    this.tokens = [...o.prompt];
    this.promptLength = o.prompt.length;
    this.generates = o.generates;
    this.maxTokens = o.maxTokens ?? Infinity;
    this.noCache = o.noCache ?? false;
    this.promptRows = o.promptRows ?? false;
    this.request = o.request;
  }

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
  /** Proposed tokens this entry verifies (after the sequence's last token; each position is sampled). */
  draft: readonly number[];
  /** Of `draft`, how many the step's output agreed with (set when its output is handed out). */
  accepted: number;
}

export interface StepPlan<R = unknown> {
  entries: StepEntry<R>[];
  tokens: number;
  /** Sequences preempted while planning this step (their slots are free again). */
  preempted: Seq<R>[];
}

export class Scheduler<R = unknown> {
  readonly kv: KvBlockManager;
  private readonly waiting: Seq<R>[] = [];
  private readonly running: Seq<R>[] = [];
  private readonly freeSlots: number[];
  /** Prompt tokens served from the prefix cache, since start. */
  cacheHitTokens = 0;
  preemptions = 0;

  constructor(readonly o: SchedulerOptions) {
    if (o.maxNumSeqs < 1) throw new Error(`maxNumSeqs must be at least 1 (got ${o.maxNumSeqs})`);
    if (o.maxBatchTokens < o.maxNumSeqs) {
      throw new Error(`maxBatchTokens (${o.maxBatchTokens}) must be at least maxNumSeqs (${o.maxNumSeqs}): every running sequence decodes each step`);
    }
    this.kv = new KvBlockManager(o);
    this.freeSlots = Array.from({ length: o.maxNumSeqs }, (_, i) => o.maxNumSeqs - 1 - i);
  }

  get fullPool(): PagePool | null {
    return this.kv.fullPool;
  }

  get slidingPool(): PagePool | null {
    return this.kv.slidingPool;
  }

  /** Positions a lone sequence can hold: its prompt plus generation must fit. */
  get capacity(): number {
    const full = this.kv.fullPool;
    return Math.min(this.o.context, full ? full.size * this.o.pageSize : this.o.context);
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

  /** Removes a sequence (finished, aborted or failed) and returns its pages and slot. */
  finish(seq: Seq<R>): void {
    if (seq.state === 'finished') return;
    const list = seq.state === 'running' ? this.running : this.waiting;
    const i = list.indexOf(seq);
    if (i >= 0) list.splice(i, 1);
    seq.state = 'finished';
    this.release(seq);
  }

  private release(seq: Seq<R>): void {
    if (seq.slot >= 0) {
      this.freeSlots.push(seq.slot);
      seq.slot = -1;
    }
    this.kv.free(seq);
  }

  private preempt(seq: Seq<R>): void {
    this.running.splice(this.running.indexOf(seq), 1);
    this.release(seq);
    seq.computed = 0;
    seq.confirmed = 0;
    this.preemptions++;
    this.insertWaiting(seq);
  }

  /**
   * Plans the next step, or null when there is nothing to run. With `ahead` the previous step is
   * still running: nothing is preempted, and sequences that will end at it are left out.
   */
  schedule(opts: { ahead?: boolean } = {}): StepPlan<R> | null {
    const entries: StepEntry<R>[] = [];
    const preempted: Seq<R>[] = [];
    let budget = this.o.maxBatchTokens;
    // logits rows for prompt logprobs: a prompt that wants them takes no more tokens than are left
    let promptRowsLeft = this.o.promptRows ?? 0;
    const rowCap = (seq: Seq<R>, n: number) => (seq.promptRows ? Math.min(n, promptRowsLeft) : n);
    const tookRows = (seq: Seq<R>, n: number) => {
      if (seq.promptRows) promptRowsLeft -= n;
    };
    const scheduled = new Set<Seq<R>>();
    const add = (seq: Seq<R>, n: number, draft: readonly number[] = []) => {
      entries.push({ seq, tok0: 0, ntok: n, pos0: seq.computed, sample: false, draft, accepted: 0 });
      seq.computed += n;
      scheduled.add(seq);
      budget -= n;
    };
    /** Pages for n more tokens of a running sequence, preempting newer ones while they are short. */
    const grow = (seq: Seq<R>, n: number): boolean => {
      if (this.kv.allocate(seq, n)) return true;
      if (opts.ahead) return false;
      for (;;) {
        const victim = this.running.filter((s) => !scheduled.has(s) && s.pending === 0).at(-1);
        if (!victim || victim === seq || victim.id < seq.id) break;
        this.preempt(victim);
        preempted.push(victim);
        if (this.kv.allocate(seq, n)) return true;
      }
      // nothing newer left to preempt: this one waits (it is the newest holding pages), or, with
      // a token still in flight, skips this step
      if (seq.pending === 0 && !scheduled.has(seq)) {
        this.preempt(seq);
        preempted.push(seq);
      }
      return false;
    };

    // 1. decode tokens, in arrival order; then the proposals they verify, from what is left
    const decoders = this.running.filter((s) => !s.prefilling);
    let spareRows = (this.o.maxRows ?? this.o.maxNumSeqs) - this.o.maxNumSeqs;
    decoders.forEach((seq, i) => {
      const draft = seq.draft;
      seq.draft = [];
      if (seq.state !== 'running') return; // preempted for an older one in this loop
      // decoding ahead of a step that ends it (its last token, or the context): nothing to feed
      if (seq.generated + seq.pending >= seq.maxTokens || seq.length > this.capacity) return;
      const own = seq.length - seq.computed;
      // proposals: never ahead (their ids are the host's), never past max tokens or the context,
      // never taking the own token of a sequence after this one
      const k = opts.ahead || seq.pending ? 0 : Math.max(0, Math.min(draft.length, seq.maxTokens - seq.generated - 1, this.capacity - seq.length, spareRows, budget - own - (decoders.length - 1 - i)));
      const n = Math.min(own + k, budget);
      if (n > 0 && grow(seq, n)) {
        add(seq, n, draft.slice(0, n - own));
        spareRows -= n - own;
      }
    });

    // 2. prompts: running ones and those admitted now share what is left
    const prompts = this.running.filter((s) => s.prefilling);
    const admissible = this.waiting.filter((s) => !preempted.includes(s)).slice(0, this.freeSlots.length);
    const shares = waterFill(budget, [...prompts.map((s) => s.length - s.computed), ...admissible.map((s) => s.length)]);
    prompts.forEach((seq, i) => {
      if (seq.state !== 'running') return;
      const n = rowCap(seq, Math.min(seq.length - seq.computed, shares[i]!, budget));
      if (n > 0 && grow(seq, n)) {
        add(seq, n);
        tookRows(seq, n);
      }
    });
    // admissions, strictly FIFO
    for (let i = 0; i < admissible.length && budget > 0 && this.freeSlots.length; i++) {
      const seq = this.waiting[0]!;
      if (seq !== admissible[i] || preempted.includes(seq)) break; // it just lost its pages: not back in the same step
      const hit = this.kv.computedBlocks(seq);
      seq.computed = hit;
      seq.confirmed = hit;
      const n = rowCap(seq, Math.min(seq.length - seq.computed, Math.max(1, shares[prompts.length + i]!), budget));
      // keep a page per running sequence for its next decode step
      if (n <= 0 || !this.kv.allocate(seq, n, this.running.length)) {
        this.kv.free(seq);
        seq.computed = 0;
        seq.confirmed = 0;
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
      add(seq, n);
      tookRows(seq, n);
    }
    // 3. budget nobody took (a blocked admission, short prompts): the prompts in arrival order
    for (const e of entries) {
      if (budget <= 0) break;
      const seq = e.seq;
      const more = rowCap(seq, Math.min(seq.length - seq.computed, budget));
      if (more <= 0) continue;
      // pages for the whole grown entry: the window of its first token must stay
      seq.computed = e.pos0;
      const ok = this.kv.allocate(seq, e.ntok + more);
      seq.computed = e.pos0 + e.ntok;
      if (!ok) continue;
      e.ntok += more;
      seq.computed += more;
      budget -= more;
      tookRows(seq, more);
    }

    let tok = 0;
    for (const e of entries) {
      e.tok0 = tok;
      tok += e.ntok;
      const seq = e.seq;
      e.sample = seq.computed - e.draft.length === seq.length && seq.generates;
      if (e.sample) seq.pending++;
    }
    if (!entries.length) return preempted.length ? { entries, tokens: 0, preempted } : null;
    return { entries, tokens: tok, preempted };
  }

  /**
   * After a step ran and its sampled ids were appended to `seq.tokens` (and `pending` lowered):
   * its positions are confirmed (a verifying entry's only up to its accepted proposals: the next
   * step writes from there), and complete blocks with known ids join the prefix cache.
   */
  complete(plan: StepPlan<R>): void {
    for (const e of plan.entries) {
      const seq = e.seq;
      if (seq.state !== 'running') continue;
      const rejected = e.draft.length - e.accepted;
      if (rejected) seq.computed -= rejected;
      seq.confirmed = Math.max(seq.confirmed, e.pos0 + e.ntok - rejected);
      this.kv.register(seq, seq.confirmed);
    }
  }
}

/**
 * Splits `budget` over requests of the given sizes, equal shares first, what a small one leaves
 * to the others (water-filling), leftovers to the earliest; returns each one's share.
 */
export function waterFill(budget: number, needs: readonly number[]): number[] {
  const out = needs.map(() => 0);
  let left = budget;
  let open = needs.map((_, i) => i).filter((i) => needs[i]! > 0);
  while (left > 0 && open.length) {
    const share = Math.max(1, Math.floor(left / open.length));
    for (const i of open) {
      if (left <= 0) break;
      const give = Math.min(share, needs[i]! - out[i]!, left);
      out[i]! += give;
      left -= give;
    }
    open = open.filter((i) => out[i]! < needs[i]!);
  }
  return out;
}
