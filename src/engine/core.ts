// The engine's GPU-free core: the step loop in vLLM's order (schedule → prepare inputs → execute →
// update from output) over a StepExecutor, which is the only part that touches the device. The
// real executor is step-exec.ts; tests drive this same loop through a fake one
// (test/engine/scheduler.test.ts). A failure in any phase fails the sequences of that step (their
// generate() rejects) and the loop serves the rest: no exception leaves it.
import { zeroStats, type BatchingState, type EngineStats, type GenerateOptions, type GenerateResult, type StepPhase, type StepSize, type StepStats } from './api.js';
import { Scheduler, type SchedulerOptions, type StepPlan } from './scheduler.js';
import { Sequences, type SeqRequest, type StepOutput } from './sequences.js';
import { StepInputWriter, type PreparedStep } from './step-inputs.js';
import type { Speculator } from './speculative/speculator.js';

/** A submitted step whose output is not back yet. */
export interface InFlight {
  readonly step: PreparedStep;
  readonly stats: StepStats;
}

/** The device side of a step: run it, then hand back its sampled ids (and logits when asked). */
export interface StepExecutor<F extends InFlight = InFlight> {
  /** Writes the step's inputs, encodes and submits it. */
  submit(step: PreparedStep): F;
  /** Waits for a submitted step and reads its output back. */
  finish(f: F): Promise<StepOutput>;
  /** True while the next step must not be planned before the current one's output is back. */
  holdsRunAhead(): boolean;
}

export interface CoreOptions {
  scheduler: SchedulerOptions;
  vocab: number;
  /** Logits rows a step holds (the step-input arrays are sized for it). */
  rows: number;
  /** u32 words of one allowed-token mask. */
  maskWords: number;
  allLogits: boolean;
  /** Plan and submit each step while the previous one runs. */
  runAhead: boolean;
  /** Sampled rows a step holds (the step-input arrays are sized for it). */
  samples?: number;
  /** Speculative decoding: proposals before each step that is not planned ahead. */
  speculator?: Speculator;
  faultHook?: (phase: StepPhase) => void;
  /** Where an error the loop absorbed is reported (default console.error). */
  log?: (message: string, error: unknown) => void;
}

export class EngineCore<F extends InFlight = InFlight> {
  readonly scheduler: Scheduler<SeqRequest>;
  readonly sequences: Sequences;
  readonly stats: EngineStats;
  /** Called after each step is submitted with its size (the server's batch-size histogram). */
  onStep: ((s: StepSize) => void) | null = null;
  private readonly inputs: StepInputWriter;
  private loopRunning = false;
  private closed = false;
  private stepWaiters: Array<{ n: number; resolve: () => void }> = [];

  constructor(
    readonly executor: StepExecutor<F>,
    private readonly o: CoreOptions,
  ) {
    this.scheduler = new Scheduler<SeqRequest>(o.scheduler);
    const scheduler = this.scheduler;
    this.stats = {
      decodeStep: zeroStats(),
      prefill: { ...zeroStats(), chunks: 0 },
      lastStep: { ...zeroStats(), tokens: 0, sequences: 0 },
      steps: 0,
      aheadSteps: 0,
      // read from the scheduler, not copied
      get preemptions() {
        return scheduler.preemptions;
      },
      get prefixCacheHitTokens() {
        return scheduler.cacheHitTokens;
      },
      speculative: o.speculator?.stats ?? null,
    };
    this.sequences = new Sequences(this.scheduler, { vocab: o.vocab, allLogits: o.allLogits, stats: this.stats });
    const s = o.scheduler;
    this.inputs = new StepInputWriter({ tokens: s.maxBatchTokens, rows: o.rows, samples: o.samples ?? s.maxNumSeqs }, o.maskWords);
  }

  get contextLength(): number {
    return this.scheduler.capacity;
  }

  get isBusy(): boolean {
    return this.scheduler.hasWork();
  }

  batching(): BatchingState {
    const pool = this.scheduler.kv.mainPool;
    return {
      running: this.scheduler.numRunning,
      waiting: this.scheduler.numWaiting,
      kvPagesUsed: pool.inUse,
      kvPagesFree: pool.available,
      kvPageSize: this.scheduler.o.pageSize,
      prefixCacheHitTokens: this.scheduler.cacheHitTokens,
      preemptions: this.scheduler.preemptions,
      speculative: this.o.speculator?.stats ?? null,
    };
  }

  /** Ends every sequence with `e`; the loop stops and takes no more work (the engine is going away). */
  close(e: unknown): void {
    this.closed = true;
    this.sequences.failAll(e);
  }

  generate(prompt: readonly number[], o: GenerateOptions): Promise<GenerateResult> {
    if (this.closed) return Promise.reject(new Error('the engine was destroyed'));
    const done = this.sequences.add(prompt, o, !!o.onPrefillLogits);
    this.wake();
    return done;
  }

  /** Resolves once `n` steps have been submitted (at once for n = 0, or when the loop goes idle). */
  afterSteps(n: number): Promise<void> {
    if (this.stats.steps >= n || !this.loopRunning) return Promise.resolve();
    return new Promise((resolve) => this.stepWaiters.push({ n, resolve }));
  }

  private wake(): void {
    if (this.loopRunning) return;
    this.loopRunning = true;
    this.loop()
      .catch((e) => this.failStep('step loop', null, e))
      .finally(() => {
        this.loopRunning = false;
        // a request that arrived as the loop was ending (in a callback it resolved) still runs
        if (this.scheduler.hasWork() && !this.closed) this.wake();
      });
  }

  private report(what: string, e: unknown, outcome = 'its sequences end with the error'): void {
    if (this.closed) return; // a step still in flight as the engine was destroyed
    try {
      (this.o.log ?? ((m, err) => console.error(m, err)))(`engine: ${what} failed; ${outcome}`, e);
    } catch {
      // a logger that throws must not take the loop down
    }
  }

  /**
   * Steps run back to back with at most two in flight: while the GPU runs step t, step t + 1 is
   * planned (counting the tokens t samples as pending), encoded and submitted; then t's ids are
   * read back and handed out. Tokens step t + 1 computed for a sequence that ended at t are
   * dropped. Sequences whose next step needs the host (constrained decoding, logits) stop the
   * run-ahead.
   */
  private async loop(): Promise<void> {
    let inFlight: F | null = null;
    while (!this.closed && (inFlight || this.scheduler.hasWork())) {
      this.guard('abort checks', null, () => this.sequences.dropAborted());
      if (!inFlight && this.o.speculator) await this.propose(this.o.speculator);
      inFlight ??= this.submitNext(false);
      if (!inFlight) {
        if (!this.scheduler.hasWork()) break;
        // a step that failed as it was planned: the loop goes on with what is left
        await new Promise((r) => setImmediate(r));
        continue;
      }
      const ahead = this.o.runAhead && this.canRunAhead() ? this.submitNext(true) : null;
      if (ahead) this.stats.aheadSteps++;
      await this.finish(inFlight);
      inFlight = ahead;
    }
    // nothing left to run before a later arrival step: those requests arrive now
    for (const w of this.stepWaiters.splice(0)) w.resolve();
  }

  private canRunAhead(): boolean {
    return !this.executor.holdsRunAhead() && !this.sequences.needsHost() && !this.o.speculator?.wantsHost(this.scheduler.runningSeqs());
  }

  /** Proposals for the next step; a proposer that fails costs them, not the requests. */
  private async propose(sp: Speculator): Promise<void> {
    try {
      await sp.propose(this.scheduler.runningSeqs());
    } catch (e) {
      this.report('proposing (speculative decoding)', e, 'the step runs without proposals');
    }
  }

  /** Runs `fn`; on a throw fails the step's sequences (every sequence when there is no step yet). */
  private guard<T>(what: string, plan: StepPlan<SeqRequest> | null, fn: () => T): T | null {
    try {
      return fn();
    } catch (e) {
      this.failStep(what, plan, e);
      return null;
    }
  }

  private failStep(what: string, plan: StepPlan<SeqRequest> | null, e: unknown): void {
    this.report(what, e);
    try {
      if (plan) for (const { seq } of plan.entries) this.sequences.fail(seq, e);
      else this.sequences.failAll(e);
    } catch (e2) {
      this.report(`${what} (cleanup)`, e2);
    }
  }

  /** Schedule → prepare inputs → submit; null when there is nothing to run now (or it failed). */
  private submitNext(ahead: boolean): F | null {
    for (;;) {
      const plan = this.guard('scheduling', null, () => {
        this.o.faultHook?.('schedule');
        return this.scheduler.schedule({ ahead });
      });
      if (!plan) return null;
      if (!plan.entries.length) {
        if (ahead) return null;
        continue; // only preemptions: plan again
      }
      const step = this.guard('input writing', plan, () => {
        this.o.faultHook?.('inputs');
        this.sequences.start(plan);
        return this.inputs.prepare(plan);
      });
      if (!step) return null;
      const f = this.guard('submit', plan, () => {
        this.o.faultHook?.('submit');
        return this.executor.submit(step);
      });
      if (!f) return null;
      this.submitted(f);
      return f;
    }
  }

  private submitted(f: F): void {
    const { plan } = f.step;
    this.stats.steps++;
    if (this.stepWaiters.length) {
      const due = this.stepWaiters.filter((w) => w.n <= this.stats.steps);
      this.stepWaiters = this.stepWaiters.filter((w) => w.n > this.stats.steps);
      for (const w of due) w.resolve();
    }
    this.stats.lastStep = { ...f.stats, tokens: plan.tokens, sequences: plan.entries.length };
    if (plan.entries.every((e) => e.ntok === 1 && e.sample && e.pos0 >= e.seq.promptLength)) this.stats.decodeStep = f.stats;
    this.guard('onStep', plan, () => this.onStep?.({ tokens: plan.tokens, sequences: plan.entries.length }));
  }

  /** Readback → update from output. */
  private async finish(f: F): Promise<void> {
    const { plan } = f.step;
    let out: StepOutput;
    try {
      this.o.faultHook?.('readback');
      out = await this.executor.finish(f);
    } catch (e) {
      this.failStep('readback', plan, e);
      return;
    }
    this.guard('output delivery', plan, () => {
      this.sequences.update(plan, out, f.stats);
      this.o.speculator?.settled(plan);
    });
  }

  /**
   * Runs `prompt` alone as one prefill-only step through `submit` instead of the executor's own
   * (captureForward's program with copies), on an idle engine.
   */
  async runOneStep(prompt: readonly number[], submit: (step: PreparedStep) => F): Promise<void> {
    if (this.isBusy) throw new Error('this needs an idle engine');
    const done = this.sequences.add(prompt, { maxTokens: 0 }, true);
    try {
      const plan = this.scheduler.schedule();
      if (!plan || plan.entries.length !== 1 || plan.tokens !== prompt.length) throw new Error(`the forward of ${prompt.length} tokens did not fit one step`);
      this.sequences.start(plan);
      const f = submit(this.inputs.prepare(plan));
      this.stats.steps++;
      this.sequences.update(plan, await this.executor.finish(f), f.stats);
    } catch (e) {
      this.sequences.failAll(e);
    }
    await done;
  }
}
