// The request lifecycle, host-only: a generate() call becomes a sequence (checks first), starts when
// its first step is prepared, receives its sampled ids after each step (callbacks, stop tokens,
// max tokens, aborts, the context), keeps its prefill accounting, and ends with a result or an
// error. The step loop (core.ts) calls it; nothing here touches the GPU.
import { zeroStats, type EngineStats, type FinishReason, type GenerateOptions, type GenerateResult, type StepStats, type TokenLogprob } from './api.js';
import { needsTokenHistory } from './logits-processing.js';
import { MAX_TOP_LOGPROBS } from './ops/context.js';
import { Seq, type Scheduler, type StepPlan } from './scheduler.js';

/** What the engine keeps per generate() call. */
export interface SeqRequest {
  opts: GenerateOptions;
  stop: Set<number>;
  resolve: (r: GenerateResult) => void;
  reject: (e: unknown) => void;
  submittedAt: number;
  admittedAt: number;
  firstTokenAt: number;
  prefill: StepStats & { chunks: number };
  /** [prompt][vocab], filled while the prompt runs (onPrefillLogits). */
  prefillLogits: Float32Array | null;
  /** Per prompt position, filled while the prompt runs (GenerateOptions.promptLogprobs). */
  promptLogprobs: (TokenLogprob | null)[] | null;
  started: boolean;
}

export type EngineSeq = Seq<SeqRequest>;

/** What a step's readback gave: the sampled ids in entry order, and the logits rows when read. */
export interface StepOutput {
  ids: Uint32Array;
  logits: Float32Array | null;
  /** The logprobs of the sampled rows that asked, by sample index. */
  logprobs?: Map<number, TokenLogprob> | null;
  /** Prompt logprobs: the logprob of the prompt token at `pos` of `seq`. */
  promptLogprobs?: { seq: EngineSeq; pos: number; lp: TokenLogprob }[];
}

function checkProcessing(o: GenerateOptions, V: number): void {
  if (o.logprobs !== undefined && !(Number.isInteger(o.logprobs) && o.logprobs >= 0 && o.logprobs <= MAX_TOP_LOGPROBS)) {
    throw new Error(`logprobs ${o.logprobs} must be an integer in [0, ${MAX_TOP_LOGPROBS}]`);
  }
  if (o.repetitionPenalty !== undefined && !(o.repetitionPenalty > 0 && Number.isFinite(o.repetitionPenalty))) throw new Error(`repetition penalty ${o.repetitionPenalty} must be > 0`);
  if (o.minP !== undefined && !(o.minP >= 0 && o.minP <= 1)) throw new Error(`min_p ${o.minP} must be in [0, 1]`);
  for (const [name, v] of [['presence', o.presencePenalty], ['frequency', o.frequencyPenalty]] as const) {
    if (v !== undefined && !Number.isFinite(v)) throw new Error(`${name} penalty ${v} is not a number`);
  }
  for (const [id, b] of o.logitBias ?? []) {
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`logit bias token id ${id} is outside the vocabulary [0, ${V})`);
    if (!Number.isFinite(b)) throw new Error(`logit bias ${b} of token ${id} is not a number`);
  }
}

export class Sequences {
  private nextId = 0;

  constructor(
    readonly scheduler: Scheduler<SeqRequest>,
    private readonly o: { vocab: number; allLogits: boolean; stats: EngineStats },
  ) {}

  /** Positions one sequence may reach: prompt plus generated tokens must fit. */
  get contextLength(): number {
    return this.scheduler.capacity;
  }

  /** Checks a request and queues its sequence; the promise settles when it ends. */
  add(prompt: readonly number[], o: GenerateOptions, noCache: boolean): Promise<GenerateResult> {
    const V = this.o.vocab;
    try {
      if (!prompt.length) throw new Error('the prompt is empty');
      for (const id of prompt) {
        if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`prompt token id ${id} is outside the vocabulary [0, ${V})`);
      }
      if (prompt.length > this.contextLength) {
        throw new Error(`the prompt has ${prompt.length} tokens, more than the context of ${this.contextLength}`);
      }
      if (o.onPrefillLogits && !this.o.allLogits) throw new Error('prefill logits need an engine loaded with allLogits');
      if (o.promptLogprobs !== undefined) {
        if (!(Number.isInteger(o.promptLogprobs) && o.promptLogprobs >= 0 && o.promptLogprobs <= MAX_TOP_LOGPROBS)) throw new Error(`prompt logprobs ${o.promptLogprobs} must be an integer in [0, ${MAX_TOP_LOGPROBS}]`);
        if (o.onPrefillLogits) throw new Error('prompt logprobs and prefill logits: ask for one');
        if (!this.scheduler.o.promptRows) throw new Error('prompt logprobs need logits rows this engine was not planned with');
      }
      checkProcessing(o, V);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<GenerateResult>((resolve, reject) => {
      const request: SeqRequest = {
        opts: o,
        stop: new Set(o.stopTokens ?? []),
        resolve,
        reject,
        submittedAt: performance.now(),
        admittedAt: 0,
        firstTokenAt: 0,
        prefill: { ...zeroStats(), chunks: 0 },
        prefillLogits: o.onPrefillLogits ? new Float32Array(prompt.length * V) : null,
        promptLogprobs: o.promptLogprobs !== undefined ? new Array<TokenLogprob | null>(prompt.length).fill(null) : null,
        started: false,
      };
      const seq = new Seq<SeqRequest>({ id: this.nextId++, prompt, generates: o.maxTokens > 0, maxTokens: o.maxTokens, noCache: noCache || o.promptLogprobs !== undefined, promptRows: o.promptLogprobs !== undefined, request });
      try {
        this.scheduler.add(seq);
      } catch (e) {
        reject(e);
      }
    });
  }

  /** Sequences of a step being prepared that run for the first time: their prefill starts. */
  start(plan: StepPlan<SeqRequest>): void {
    const now = performance.now();
    for (const { seq } of plan.entries) {
      const req = seq.request;
      if (req.started) continue;
      req.started = true;
      req.admittedAt = now;
      req.opts.onStart?.();
    }
  }

  /** Whether a sequence needs the host between its steps (masks, logits): no run-ahead then. */
  needsHost(): boolean {
    for (const list of [this.scheduler.runningSeqs(), this.scheduler.waitingSeqs()]) {
      for (const { request: r } of list) if (r.opts.constraint || r.opts.onLogits || r.prefillLogits || needsTokenHistory(r.opts)) return true;
    }
    return false;
  }

  /** Ends the sequences whose client left. */
  dropAborted(): void {
    for (const list of [this.scheduler.runningSeqs(), this.scheduler.waitingSeqs()]) {
      for (const seq of [...list]) if (seq.request.opts.signal?.aborted) this.end(seq, 'abort');
    }
  }

  /**
   * A finished step's output: the ids go to their sequences, the scheduler registers completed
   * blocks, then each sequence's callbacks and end checks run.
   */
  update(plan: StepPlan<SeqRequest>, out: StepOutput, stats: StepStats): void {
    const V = this.o.vocab;
    const { ids, logits } = out;
    let s = 0;
    let row = 0;
    // the tokens each sequence gets from this step (more than one when it verified proposals)
    const sampled = new Map<EngineSeq, { ids: number[]; logprobs: (TokenLogprob | undefined)[] }>();
    for (const e of plan.entries) {
      const seq = e.seq;
      const req = seq.request;
      if (req.prefillLogits && e.pos0 < seq.promptLength) {
        req.prefillLogits.set(logits!.subarray(row * V, (row + e.ntok) * V), e.pos0 * V);
        row += e.ntok;
      } else {
        if (req.promptLogprobs) row += Math.max(0, Math.min(e.pos0 + e.ntok, seq.promptLength - 1) - e.pos0);
        if (e.sample) row += 1 + e.draft.length;
      }
      if (e.sample && req.opts.onLogits && seq.state === 'running') req.opts.onLogits(logits!.slice((row - 1) * V, row * V));
      if (!req.firstTokenAt) {
        req.prefill.dispatches += stats.dispatches;
        req.prefill.submits += stats.submits;
        req.prefill.readbacks += stats.readbacks;
        req.prefill.pipelinesCreated += stats.pipelinesCreated;
        req.prefill.chunks++;
      }
      if (e.sample) {
        const s0 = s;
        s += 1 + e.draft.length;
        // a sequence that ended while this step ran (it was planned ahead) drops its token
        if (seq.state !== 'running') continue;
        // the target's own token at each verified position: proposals are kept while they agree,
        // then the target's token where they first differ (or after the last) ends the run
        let a = 0;
        while (a < e.draft.length && ids[s0 + a] === e.draft[a]) a++;
        e.accepted = a;
        const got = { ids: Array.from(ids.subarray(s0, s0 + a + 1)), logprobs: Array.from({ length: a + 1 }, (_, j) => out.logprobs?.get(s0 + j)) };
        seq.tokens.push(...got.ids);
        seq.pending--;
        sampled.set(seq, got);
      }
    }
    for (const { seq, pos, lp } of out.promptLogprobs ?? []) if (seq.request.promptLogprobs) seq.request.promptLogprobs[pos] = lp;
    this.scheduler.complete(plan);
    for (const e of plan.entries) {
      const seq = e.seq;
      if (seq.state !== 'running') continue;
      const req = seq.request;
      const got = sampled.get(seq);
      if (got === undefined) {
        if (!seq.generates && seq.confirmed === seq.tokens.length) {
          this.finishPrefill(seq);
          this.end(seq, 'length');
        }
        continue;
      }
      if (!req.firstTokenAt) {
        req.firstTokenAt = performance.now();
        this.finishPrefill(seq);
      }
      // one at a time, so each token's checks see the sequence as it was when it was drawn, and
      // one that ends it drops the rest of an accepted run
      const base = seq.tokens.length - got.ids.length;
      seq.tokens.length = base;
      try {
        for (let j = 0; j < got.ids.length && seq.state === 'running'; j++) {
          seq.tokens.push(got.ids[j]!);
          this.deliver(seq, got.ids[j]!, got.logprobs[j]);
        }
      } catch (err) {
        this.fail(seq, err);
      }
    }
  }

  private finishPrefill(seq: EngineSeq): void {
    const req = seq.request;
    this.o.stats.prefill = { ...req.prefill };
    if (req.prefillLogits) {
      req.opts.onPrefillLogits?.(req.prefillLogits);
      req.prefillLogits = null;
    }
    if (req.promptLogprobs) req.opts.onPromptLogprobs?.(req.promptLogprobs);
  }

  /** One sampled id for a sequence: callbacks, then the checks that end it. */
  private deliver(seq: EngineSeq, id: number, lp?: TokenLogprob): void {
    const o = seq.request.opts;
    o.constraint?.accept(id);
    if (o.onToken?.(id, lp) === false) return this.end(seq, 'abort');
    if (seq.request.stop.has(id)) return this.end(seq, 'stop');
    if (seq.generated >= o.maxTokens) return this.end(seq, 'length');
    if (o.signal?.aborted) return this.end(seq, 'abort');
    // the new token is fed at position tokens.length - 1
    if (seq.tokens.length > this.contextLength) return this.end(seq, 'context');
  }

  private result(seq: EngineSeq, finishReason: FinishReason): GenerateResult {
    const r = seq.request;
    const now = performance.now();
    const admitted = r.admittedAt || now;
    const first = r.firstTokenAt || now;
    return {
      tokens: seq.tokens.slice(seq.promptLength),
      finishReason,
      promptTokens: seq.promptLength,
      cachedTokens: seq.cachedTokens,
      ...(r.promptLogprobs ? { promptLogprobs: r.promptLogprobs } : {}),
      queueMs: admitted - r.submittedAt,
      prefillMs: first - admitted,
      decodeMs: now - first,
    };
  }

  end(seq: EngineSeq, reason: FinishReason): void {
    if (seq.state === 'finished') return;
    this.scheduler.finish(seq);
    seq.request.resolve(this.result(seq, reason));
  }

  /** Ends a sequence with an error (its generate() rejects); its pages and slot go back. */
  fail(seq: EngineSeq, e: unknown): void {
    if (seq.state === 'finished') return;
    try {
      this.scheduler.finish(seq);
    } finally {
      seq.request.reject(e);
    }
  }

  /** Fails every sequence, running or waiting. */
  failAll(e: unknown): void {
    for (const s of [...this.scheduler.runningSeqs(), ...this.scheduler.waitingSeqs()]) this.fail(s, e);
  }
}
