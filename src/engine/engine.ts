// The engine: owns the device, the weights, the paged KV cache and the recorded forward program,
// and generates for many sequences at once. Each step is one batch of tokens chosen by the
// scheduler (decode tokens of running sequences plus prompt chunks), one command buffer, one
// submit and one readback of the sampled ids; routing and the previous ids never leave the GPU.
import { acquireGpu, type Gpu } from '../gpu/device.js';
import { ShaderCache, subgroupLayoutHolds } from '../gpu/shaders.js';
import { encodeDispatches, groupsOf, readBuffer, storageBuffer, uploadBuffer, writeBuffer, type Dispatch, type StepShape } from '../gpu/buffers.js';
import { openCheckpoint, expectedTensors } from '../model/checkpoint.js';
import type { ModelConfig } from '../model/config.js';
import { OpContext, SAMPLE_ROW_WORDS, SAMPLED_ID, StepInputs, TOK_INFO_WORDS } from './ops/context.js';
import { AttentionPlan, attentionScratch, checkAttentionShape, type AttentionEntry, type KvLayout } from './ops/attention.js';
import { activationBytes, allocateActivations, buildProgram, DECODE_MAX_TOKENS, encodeProgram, type Activations, type Capture, type LayerKv, type Program, type ProgramItem } from './forward.js';
import { allocateKv, planKv, type KvBuffers, type KvDtype, type KvPlan } from './kv-cache.js';
import { ropeTable } from './rope.js';
import { Scheduler, Seq, type StepPlan } from './scheduler.js';
import { gpuBytes, uploadWeights, weightBuffers, type ModelWeights, type TensorSource, type UploadProgress } from './weights.js';

export interface EngineOptions {
  /** Positions one sequence may reach (prompt + generated). Default: the model's max_position_embeddings. */
  context?: number;
  /** Tokens per step (the prefill chunk when one sequence runs alone). Default 512. */
  maxBatchTokens?: number;
  /** Sequences running at once. Default 1 (a single-sequence engine); the server asks for more. */
  maxNumSeqs?: number;
  /** Bytes for the KV cache (default: two full contexts or 4096 positions per sequence, whichever is more; one context with a single sequence). */
  kvMemory?: number;
  /** Positions per KV page (a power of two, at least 16). Default 32. */
  pageSize?: number;
  /** KV cache storage. Default f16 (f32 accumulation). */
  kvDtype?: KvDtype;
  /** Share cached prompt blocks between sequences. Default true. */
  prefixCaching?: boolean;
  /** Plan and submit each step while the previous one runs (ids read back a step later). Default true. */
  runAhead?: boolean;
  /** Keep logits for every prompt row (for --logits-out and tests), not only the sampled ones. */
  allLogits?: boolean;
  /** Workgroups decode attention aims for (splitting long sequences over key ranges). Default 256. */
  attentionWorkgroups?: number;
  /**
   * Largest binding of a shard of the embeddings and experts (default: the adapter's
   * maxStorageBufferBindingSize, above which they are always split). Tests set it low.
   */
  shardBytes?: number;
  /** Dawn robustness (tests). */
  robust?: boolean;
  gpu?: Gpu;
  /** Use the portable reduction path even where subgroups exist. */
  noSubgroups?: boolean;
  onPlan?: (plan: MemoryPlan) => void;
  onProgress?: UploadProgress;
}

export interface MemoryPlan {
  weights: number;
  kv: number;
  rope: number;
  activations: number;
  total: number;
  context: number;
  /** Tokens per step. */
  chunk: number;
  maxNumSeqs: number;
  kvPages: { pageSize: number; dtype: KvDtype; full: number; sliding: number; positions: number };
}

export interface SamplingOptions {
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
}

export interface GenerateOptions extends SamplingOptions {
  maxTokens: number;
  /** Token ids that end generation (included in the output). */
  stopTokens?: readonly number[];
  signal?: AbortSignal;
  /** Called with each sampled token; return false to stop. */
  onToken?: (id: number) => boolean | void;
  /** Receive the prefill logits of every prompt row ([prompt][vocab]); needs allLogits. */
  onPrefillLogits?: (logits: Float32Array) => void;
  /** Constrained decoding (src/constrain): which tokens the sampler may pick at each step. */
  constraint?: TokenMaskSource;
  /** Called once the sequence holds a slot and its prefill starts. */
  onStart?: () => void;
  /** Receives the logits row each token is sampled from (tests and debugging: one more readback per step). */
  onLogits?: (row: Float32Array) => void;
}

/**
 * Before each token: next() gives the allowed-token bitmask (u32 words, bit i of word i >> 5 =
 * token i, ceil(vocab / 32) words) or null for no constraint; after it: accept(id) with the sampled
 * id (it may throw to end generation). A masked step still costs one submit and one readback.
 */
export interface TokenMaskSource {
  next(): Uint32Array | null;
  accept(id: number): void;
}

export type FinishReason = 'stop' | 'length' | 'abort' | 'context';

export interface GenerateResult {
  tokens: number[];
  finishReason: FinishReason;
  promptTokens: number;
  /** Prompt tokens served from the prefix cache. */
  cachedTokens: number;
  /** Waiting for a slot (continuous batching queue). */
  queueMs: number;
  /** From admission to the first sampled token. */
  prefillMs: number;
  decodeMs: number;
}

export interface StepStats {
  dispatches: number;
  submits: number;
  readbacks: number;
  pipelinesCreated: number;
}

export interface EngineStats {
  /** Counters of the last step that only decoded. */
  decodeStep: StepStats;
  /** Totals of the last completed prefill (every step before its first token). */
  prefill: StepStats & { chunks: number };
  /** Counters of the last step. */
  lastStep: StepStats & { tokens: number; sequences: number };
  steps: number;
  /** Steps planned and submitted while the previous one still ran. */
  aheadSteps: number;
  preemptions: number;
  prefixCacheHitTokens: number;
}

const zeroStats = (): StepStats => ({ dispatches: 0, submits: 0, readbacks: 0, pipelinesCreated: 0 });

/** What the engine keeps per request. */
interface Request {
  opts: GenerateOptions;
  stop: Set<number>;
  resolve: (r: GenerateResult) => void;
  reject: (e: unknown) => void;
  submittedAt: number;
  admittedAt: number;
  firstTokenAt: number;
  prefill: StepStats & { chunks: number };
  prefillLogits: Float32Array | null;
  /** Page-table entries already on the GPU for the current slot, per group. */
  syncedFull: number;
  syncedSliding: number;
  started: boolean;
}

type EngineSeq = Seq<Request>;

/** A submitted step whose ids are not read back yet. */
interface InFlight {
  plan: StepPlan<Request>;
  stats: StepStats;
  samples: number;
  rows: number;
  readback: GPUBuffer;
  staging: GPUBuffer | null;
  timings: { count: number; read: () => Promise<{ label: string; ms: number }[]> } | null;
  /** What ran, for a byte count (countNextStep). */
  items: readonly ProgramItem[];
  shape: StepShape;
}

/** Weight bytes one step's kernels fetched (Dispatch.weightBytes), in all and per kernel. */
export interface StepBytes {
  tokens: number;
  sequences: number;
  total: number;
  byKernel: Record<string, number>;
}

/** The continuous-batching state: sequences, KV pages in use and free, prefix-cache hits, preemptions. */
export interface BatchingState {
  running: number;
  waiting: number;
  kvPagesUsed: number;
  kvPagesFree: number;
  /** Positions per KV page: pages used × this is the positions the sequences hold. */
  kvPageSize: number;
  prefixCacheHitTokens: number;
  preemptions: number;
}

/** A submitted step's size. */
export interface StepSize {
  tokens: number;
  sequences: number;
}

export class Engine {
  readonly stats: EngineStats = {
    decodeStep: zeroStats(),
    prefill: { ...zeroStats(), chunks: 0 },
    lastStep: { ...zeroStats(), tokens: 0, sequences: 0 },
    steps: 0,
    aheadSteps: 0,
    preemptions: 0,
    prefixCacheHitTokens: 0,
  };
  readonly scheduler: Scheduler<Request>;
  private readonly readbacks: GPUBuffer[];
  private readonly runAhead: boolean;
  private readonly tokWords: Uint32Array;
  private readonly rowWords: Uint32Array;
  private readonly sampleWords: Uint32Array;
  private readonly sampleFloats: Float32Array;
  private readonly counts: Record<string, number> = {};
  private nextId = 0;
  private loopRunning = false;
  private logitsStaging: GPUBuffer | null = null;
  private profileWaiters: Array<{ when: (p: StepPlan<Request>) => boolean; resolve: (r: { label: string; ms: number }[]) => void }> = [];
  private stepWaiters: Array<{ n: number; resolve: () => void }> = [];
  private byteWaiters: Array<{ when: (p: StepPlan<Request>) => boolean; resolve: (b: StepBytes) => void }> = [];

  private constructor(
    readonly gpu: Gpu,
    readonly shaders: ShaderCache,
    readonly ctx: OpContext,
    readonly config: ModelConfig,
    readonly plan: MemoryPlan,
    readonly kvPlan: KvPlan,
    private readonly kvLayout: KvLayout,
    private readonly weights: ModelWeights,
    private readonly act: Activations,
    private readonly inputs: StepInputs,
    private readonly kv: KvBuffers,
    private readonly plans: { sliding: AttentionPlan | null; full: AttentionPlan | null },
    private readonly layerKv: LayerKv[],
    private readonly scratch: ReturnType<typeof attentionScratch>,
    private readonly rope: GPUBuffer,
    private readonly program: Program,
    private readonly ownsGpu: boolean,
    private readonly allLogits: boolean,
    runAhead: boolean,
    schedulerOptions: ConstructorParameters<typeof Scheduler<Request>>[0],
  ) {
    this.scheduler = new Scheduler<Request>(schedulerOptions);
    this.readbacks = [0, 1].map(() => gpu.device.createBuffer({ size: Math.max(16, inputs.cap.samples * 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }));
    this.runAhead = runAhead;
    this.tokWords = new Uint32Array(inputs.cap.tokens * TOK_INFO_WORDS);
    this.rowWords = new Uint32Array(Math.max(1, inputs.cap.rows));
    this.sampleWords = new Uint32Array(Math.max(1, inputs.cap.samples) * SAMPLE_ROW_WORDS);
    this.sampleFloats = new Float32Array(this.sampleWords.buffer);
  }

  /** Positions one sequence may reach: prompt plus generated tokens must fit. */
  get contextLength(): number {
    return this.scheduler.capacity;
  }

  /**
   * Resolves once `n` steps have been submitted (at once for n = 0): requests that join a running
   * batch at a given step (generate --requests arrival_step).
   */
  afterSteps(n: number): Promise<void> {
    if (this.stats.steps >= n) return Promise.resolve();
    return new Promise((resolve) => this.stepWaiters.push({ n, resolve }));
  }

  /** Whether any sequence is running or waiting. */
  get isBusy(): boolean {
    return this.scheduler.hasWork();
  }

  get maxNumSeqs(): number {
    return this.scheduler.o.maxNumSeqs;
  }

  /** The batch as /metrics shows it: sequences, KV pages of the full-attention group (or the sliding one), cache hits. */
  batching(): BatchingState {
    const pool = this.scheduler.fullPool ?? this.scheduler.slidingPool!;
    return {
      running: this.scheduler.numRunning,
      waiting: this.scheduler.numWaiting,
      kvPagesUsed: pool.inUse,
      kvPagesFree: pool.available,
      kvPageSize: this.kvPlan.pageSize,
      prefixCacheHitTokens: this.scheduler.cacheHitTokens,
      preemptions: this.scheduler.preemptions,
    };
  }

  /** Called after each step is submitted with its size (the server's batch-size histogram). */
  onStep: ((s: StepSize) => void) | null = null;

  /** Loads a checkpoint folder (either layout) or any tensor source. */
  static async load(source: string | TensorSource, opts: EngineOptions = {}): Promise<Engine> {
    if (typeof source !== 'string') return Engine.create(source, opts);
    const ckpt = await openCheckpoint(source);
    try {
      return await Engine.create(ckpt, opts);
    } finally {
      await ckpt.close();
    }
  }

  private static async create(src: TensorSource, opts: EngineOptions): Promise<Engine> {
    const config = src.config;
    const context = Math.min(opts.context ?? config.maxPositionEmbeddings, config.maxPositionEmbeddings);
    if (!(context >= 1)) throw new Error(`context must be at least 1 (got ${opts.context})`);
    const maxNumSeqs = opts.maxNumSeqs ?? 1;
    const maxBatchTokens = Math.max(maxNumSeqs, Math.min(opts.maxBatchTokens ?? 512, Math.max(context, maxNumSeqs)));
    const pageSize = opts.pageSize ?? 32;
    const kvLayout0 = { pageSize, f32: opts.kvDtype === 'f32' };
    checkAttentionShape(config, kvLayout0);
    const rows = opts.allLogits ? maxBatchTokens : maxNumSeqs;

    const gpu = opts.gpu ?? (await acquireGpu({ robust: opts.robust }));
    const maxBinding = gpu.device.limits.maxStorageBufferBindingSize;
    const kvPlan = planKv(config, {
      context,
      seqs: maxNumSeqs,
      batchTokens: maxBatchTokens,
      pageSize,
      dtype: opts.kvDtype ?? 'f16',
      memory: opts.kvMemory,
      maxBinding,
    });
    const weightBytes = expectedTensors(config).reduce((n, t) => n + gpuBytes({ ...t, byteLength: tensorBytes(t) }), 0);
    const activations = activationBytes({ config, tokens: maxBatchTokens, rows });
    const rope = context * config.headDim * 4;
    const plan: MemoryPlan = {
      weights: weightBytes,
      kv: kvPlan.bytes,
      rope,
      activations,
      total: weightBytes + kvPlan.bytes + rope + activations,
      context,
      chunk: maxBatchTokens,
      maxNumSeqs,
      kvPages: { pageSize, dtype: kvPlan.dtype, full: kvPlan.fullPages, sliding: kvPlan.slidingPages, positions: kvPlan.positions },
    };
    opts.onPlan?.(plan);

    const shaders = new ShaderCache(gpu, !opts.noSubgroups && (await subgroupLayoutHolds(gpu)));
    const ctx = new OpContext(gpu, shaders);
    const weights = await uploadWeights(gpu, shaders, src, { shardBytes: opts.shardBytes, onProgress: opts.onProgress });
    const act = allocateActivations(ctx, { config, tokens: maxBatchTokens, rows });
    const inputs = new StepInputs(gpu, { tokens: maxBatchTokens, rows, samples: maxNumSeqs, seqs: maxNumSeqs, vocab: config.vocabSize });
    const kv = allocateKv(gpu, config, kvPlan, maxNumSeqs);
    const kvLayout: KvLayout = { ...kvLayout0, maxBlocks: kvPlan.maxBlocks };
    const limits = { seqs: maxNumSeqs, tokens: maxBatchTokens, targetWorkgroups: opts.attentionWorkgroups };
    const attnPlans = {
      sliding: kvPlan.slidingPages ? new AttentionPlan(gpu, 'attn.sliding', config, true, kvLayout, limits) : null,
      full: kvPlan.fullPages ? new AttentionPlan(gpu, 'attn.full', config, false, kvLayout, limits) : null,
    };
    const partials = Math.max(attnPlans.sliding?.partialCap ?? 0, attnPlans.full?.partialCap ?? 0);
    const scratch = attentionScratch(gpu, config, partials);
    const layerKv: LayerKv[] = config.layerTypes.map((t, i) => ({
      table: (t === 'full' ? kv.fullTable : kv.slidingTable)!,
      k: kv.layers[i]!.k,
      v: kv.layers[i]!.v,
      plan: (t === 'full' ? attnPlans.full : attnPlans.sliding)!,
    }));
    const ropeBuf = uploadBuffer(gpu, ropeTable(config, context), 'rope');
    const program = buildProgram({ ctx, config, weights, act, inputs, kv: layerKv, kvLayout, scratch, rope: ropeBuf });
    await shaders.validate();
    return new Engine(gpu, shaders, ctx, config, plan, kvPlan, kvLayout, weights, act, inputs, kv, attnPlans, layerKv, scratch, ropeBuf, program, !opts.gpu, !!opts.allLogits, opts.runAhead ?? true, {
      maxNumSeqs,
      maxBatchTokens,
      pageSize,
      context,
      fullPages: kvPlan.fullPages,
      slidingPages: kvPlan.slidingPages,
      window: config.slidingWindow,
      prefixCaching: opts.prefixCaching ?? true,
    });
  }

  /**
   * Generates for one sequence. Any number of calls may run at once: they join the running batch
   * (continuous batching) and each resolves when its sequence ends.
   */
  generate(prompt: readonly number[], o: GenerateOptions): Promise<GenerateResult> {
    return this.enqueue(prompt, o, { wake: true, noCache: !!o.onPrefillLogits });
  }

  private enqueue(prompt: readonly number[], o: GenerateOptions, how: { wake: boolean; noCache: boolean }): Promise<GenerateResult> {
    const V = this.config.vocabSize;
    try {
      if (!prompt.length) throw new Error('the prompt is empty');
      for (const id of prompt) {
        if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`prompt token id ${id} is outside the vocabulary [0, ${V})`);
      }
      if (prompt.length > this.contextLength) {
        throw new Error(`the prompt has ${prompt.length} tokens, more than the context of ${this.contextLength}`);
      }
      if (o.onPrefillLogits && !this.allLogits) throw new Error('prefill logits need an engine loaded with allLogits');
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<GenerateResult>((resolve, reject) => {
      const req: Request = {
        opts: o,
        stop: new Set(o.stopTokens ?? []),
        resolve,
        reject,
        submittedAt: performance.now(),
        admittedAt: 0,
        firstTokenAt: 0,
        prefill: { ...zeroStats(), chunks: 0 },
        prefillLogits: o.onPrefillLogits ? new Float32Array(prompt.length * V) : null,
        syncedFull: 0,
        syncedSliding: 0,
        started: false,
      };
      const seq = new Seq<Request>(this.nextId++, [...prompt], prompt.length, o.maxTokens > 0, how.noCache, req);
      seq.maxTokens = o.maxTokens;
      try {
        this.scheduler.add(seq);
      } catch (e) {
        reject(e);
        return;
      }
      if (how.wake) this.wake();
    });
  }

  private wake(): void {
    if (this.loopRunning) return;
    this.loopRunning = true;
    void this.loop().finally(() => {
      this.loopRunning = false;
      // a request that arrived as the loop was ending (in a callback it resolved) still runs
      if (this.scheduler.hasWork()) this.wake();
    });
  }

  /**
   * Steps run back to back with at most two in flight: while the GPU runs step t, step t + 1 is
   * planned (counting the tokens t samples as pending), encoded and submitted; then t's ids are
   * read back and handed out. Tokens step t + 1 computed for a sequence that ended at t are
   * dropped. Sequences whose next step needs the host (constrained decoding) stop the run-ahead.
   */
  private async loop(): Promise<void> {
    let inFlight: InFlight | null = null;
    while (inFlight || this.scheduler.hasWork()) {
      this.dropAborted();
      inFlight ??= this.submitNext({});
      if (!inFlight) {
        if (!this.scheduler.hasWork()) break;
        continue;
      }
      const ahead = this.runAhead && this.canRunAhead() ? this.submitNext({ ahead: true }) : null;
      if (ahead) this.stats.aheadSteps++;
      try {
        await this.finishStep(inFlight);
      } catch (e) {
        for (const { seq } of inFlight.plan.entries) this.fail(seq, e);
      }
      inFlight = ahead;
    }
    // nothing left to run before a later arrival step: those requests arrive now
    for (const w of this.stepWaiters.splice(0)) w.resolve();
  }

  /** Plans and submits the next step; null when there is nothing to run now. */
  private submitNext(opts: { ahead?: boolean }): InFlight | null {
    for (;;) {
      const plan = this.scheduler.schedule(opts);
      if (!plan) return null;
      for (const s of plan.preempted) {
        s.request.syncedFull = 0;
        s.request.syncedSliding = 0;
      }
      this.stats.preemptions = this.scheduler.preemptions;
      if (!plan.entries.length) {
        if (opts.ahead) return null;
        continue;
      }
      try {
        return this.submitStep(plan);
      } catch (e) {
        for (const { seq } of plan.entries) this.fail(seq, e);
        return null;
      }
    }
  }

  /** Whether the next step can be planned before the current one's ids are back. */
  private canRunAhead(): boolean {
    // profiling and byte counts read the step's buffers after it: nothing may overwrite them first
    if (this.profileWaiters.length || this.byteWaiters.length) return false;
    for (const list of [this.scheduler.runningSeqs(), this.scheduler.waitingSeqs()]) {
      for (const seq of list) if (seq.request.opts.constraint || seq.request.opts.onLogits || seq.request.prefillLogits) return false;
    }
    return true;
  }

  private dropAborted(): void {
    for (const list of [this.scheduler.runningSeqs(), this.scheduler.waitingSeqs()]) {
      for (const seq of [...list]) if (seq.request.opts.signal?.aborted) this.end(seq, 'abort');
    }
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
      queueMs: admitted - r.submittedAt,
      prefillMs: first - admitted,
      decodeMs: now - first,
    };
  }

  private end(seq: EngineSeq, reason: FinishReason): void {
    if (seq.state === 'finished') return;
    this.scheduler.finish(seq);
    seq.request.resolve(this.result(seq, reason));
  }

  private fail(seq: EngineSeq, e: unknown): void {
    if (seq.state === 'finished') return;
    this.scheduler.finish(seq);
    seq.request.reject(e);
  }

  /** Writes the step's inputs, encodes and submits it. */
  private submitStep(plan: StepPlan<Request>, program: Program = this.program): InFlight {
    const items = plan.tokens < DECODE_MAX_TOKENS ? program.decode : program.prefill;
    const created0 = this.shaders.created;
    const V = this.config.vocabSize;
    const now = performance.now();
    let rows = 0;
    let samples = 0;
    let scan = 0; // sampled rows the unembedding's greedy pick does not settle
    let logitRows = false;
    const entries: AttentionEntry[] = [];
    for (const e of plan.entries) {
      const seq = e.seq;
      const req = seq.request;
      if (!req.started) {
        req.started = true;
        req.admittedAt = now;
        req.opts.onStart?.();
      }
      this.syncPageTable(seq);
      for (let i = 0; i < e.ntok; i++) {
        const pos = e.pos0 + i;
        const w = (e.tok0 + i) * TOK_INFO_WORDS;
        // a pending token's id is only on the GPU, where the sampler left it for this slot
        this.tokWords[w] = pos < seq.tokens.length ? seq.tokens[pos]! : (SAMPLED_ID | seq.slot) >>> 0;
        this.tokWords[w + 1] = pos;
        this.tokWords[w + 2] = seq.slot;
      }
      entries.push({ tok0: e.tok0, ntok: e.ntok, seq: seq.slot, pos0: e.pos0 });
      if (req.prefillLogits && e.pos0 < seq.promptLength) {
        for (let i = 0; i < e.ntok; i++) this.rowWords[rows++] = e.tok0 + i;
        logitRows = true;
      } else if (e.sample) {
        this.rowWords[rows++] = e.tok0 + e.ntok - 1;
      }
      if (e.sample && req.opts.onLogits) logitRows = true;
      if (e.sample) {
        const o = req.opts;
        const mask = o.constraint?.next() ?? null;
        if (mask) {
          if (mask.length !== this.inputs.maskWords) throw new Error(`sampler mask has ${mask.length} words, expected ${this.inputs.maskWords}`);
          writeBuffer(this.gpu, this.inputs.masks, seq.slot * this.inputs.maskWords * 4, mask);
        }
        const w = samples++ * SAMPLE_ROW_WORDS;
        this.sampleWords[w] = rows - 1;
        this.sampleWords[w + 1] = seq.slot;
        this.sampleWords[w + 2] = (o.seed ?? 0) >>> 0;
        // the index of the token being sampled: a pending one counts
        this.sampleWords[w + 3] = seq.generated + seq.pending - 1;
        this.sampleFloats[w + 4] = o.temperature ?? 0;
        this.sampleFloats[w + 5] = o.topP ?? 1;
        this.sampleWords[w + 6] = o.topK ?? 0;
        this.sampleWords[w + 7] = mask ? 1 : 0;
        if ((o.temperature ?? 0) > 0 || mask) scan++;
      }
    }
    this.counts['sample.scan'] = scan;
    const shape: StepShape = { tokens: plan.tokens, rows, samples, counts: this.counts };
    for (const p of [this.plans.sliding, this.plans.full]) {
      if (!p) continue;
      p.build(entries);
      p.write();
      p.stepCounts(this.counts);
    }
    writeBuffer(this.gpu, this.inputs.toks, 0, this.tokWords.subarray(0, plan.tokens * TOK_INFO_WORDS));
    if (rows) writeBuffer(this.gpu, this.inputs.rows, 0, this.rowWords.subarray(0, rows));
    if (samples) writeBuffer(this.gpu, this.inputs.samples, 0, this.sampleWords.subarray(0, samples * SAMPLE_ROW_WORDS));
    this.ctx.writeStep(shape);

    const enc = this.gpu.device.createCommandEncoder();
    const profile = this.profileWaiters.some((w) => w.when(plan));
    const timings = profile ? this.encodeProfiled(enc, items, shape) : null;
    const dispatches = timings ? timings.count : encodeProgram(enc, items, shape);
    let readbacks = 0;
    // two readback buffers: a step planned ahead copies its ids while the previous one is mapped
    const readback = this.readbacks[this.stats.steps % 2]!;
    if (samples) {
      enc.copyBufferToBuffer(this.inputs.sampled, 0, readback, 0, samples * 4);
      readbacks++;
    }
    const staging = logitRows ? this.stagingFor(rows * V * 4) : null;
    if (staging) {
      enc.copyBufferToBuffer(this.act.logits, 0, staging, 0, rows * V * 4);
      readbacks++;
    }
    this.gpu.device.queue.submit([enc.finish()]);
    const stats: StepStats = { dispatches, submits: 1, readbacks, pipelinesCreated: this.shaders.created - created0 };
    this.stats.steps++;
    if (this.stepWaiters.length) {
      const due = this.stepWaiters.filter((w) => w.n <= this.stats.steps);
      this.stepWaiters = this.stepWaiters.filter((w) => w.n > this.stats.steps);
      for (const w of due) w.resolve();
    }
    this.stats.lastStep = { ...stats, tokens: plan.tokens, sequences: plan.entries.length };
    this.onStep?.({ tokens: plan.tokens, sequences: plan.entries.length });
    if (plan.entries.every((e) => e.ntok === 1 && e.sample && e.pos0 >= e.seq.promptLength)) this.stats.decodeStep = stats;
    return { plan, stats, samples, rows, readback, staging, timings, items, shape: { ...shape, counts: { ...this.counts } } };
  }

  /** Waits for a submitted step, reads its ids back and hands them out. */
  private async finishStep(f: InFlight): Promise<void> {
    const { plan, stats } = f;
    const V = this.config.vocabSize;
    // A step without a readback (a prompt chunk) is still waited for: at most two steps are in
    // flight, so an abort or a new arrival takes effect within a step or two, not after a queue.
    const ids = f.samples ? await this.readIds(f.readback, f.samples) : new Uint32Array(0);
    if (!f.samples && !f.staging) await this.gpu.device.queue.onSubmittedWorkDone();
    const logits = f.staging ? await this.readStaging(f.staging, f.rows * V) : null;
    if (f.timings) {
      const r = await f.timings.read();
      const i = this.profileWaiters.findIndex((w) => w.when(plan));
      this.profileWaiters.splice(i, 1)[0]!.resolve(r);
    }
    const byteWaiter = this.byteWaiters.findIndex((w) => w.when(plan));
    if (byteWaiter >= 0) this.byteWaiters.splice(byteWaiter, 1)[0]!.resolve(await this.countBytes(f));

    // hand out the ids, then let the scheduler register completed blocks, then finish sequences
    let s = 0;
    let row = 0;
    const sampled = new Map<EngineSeq, number>();
    for (const e of plan.entries) {
      const seq = e.seq;
      const req = seq.request;
      if (req.prefillLogits && e.pos0 < seq.promptLength) {
        req.prefillLogits.set(logits!.subarray(row * V, (row + e.ntok) * V), e.pos0 * V);
        row += e.ntok;
      } else if (e.sample) {
        row++;
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
        const id = ids[s++]!;
        // a sequence that ended while this step ran (it was planned ahead) drops its token
        if (seq.state !== 'running') continue;
        seq.tokens.push(id);
        seq.pending--;
        sampled.set(seq, id);
      }
    }
    this.scheduler.complete(plan);
    this.stats.prefixCacheHitTokens = this.scheduler.cacheHitTokens;
    for (const e of plan.entries) {
      const seq = e.seq;
      if (seq.state !== 'running') continue;
      const req = seq.request;
      const id = sampled.get(seq);
      if (id === undefined) {
        if (!seq.samples && seq.confirmed === seq.tokens.length) {
          this.finishPrefill(seq);
          this.end(seq, 'length');
        }
        continue;
      }
      if (!req.firstTokenAt) {
        req.firstTokenAt = performance.now();
        this.finishPrefill(seq);
      }
      try {
        this.deliver(seq, id);
      } catch (err) {
        this.fail(seq, err);
      }
    }
  }

  private finishPrefill(seq: EngineSeq): void {
    const req = seq.request;
    this.stats.prefill = { ...req.prefill };
    if (req.prefillLogits) {
      req.opts.onPrefillLogits?.(req.prefillLogits);
      req.prefillLogits = null;
    }
  }

  /** One sampled id for a sequence: callbacks, then the checks that end it. */
  private deliver(seq: EngineSeq, id: number): void {
    const o = seq.request.opts;
    o.constraint?.accept(id);
    if (o.onToken?.(id) === false) return this.end(seq, 'abort');
    if (seq.request.stop.has(id)) return this.end(seq, 'stop');
    if (seq.generated >= o.maxTokens) return this.end(seq, 'length');
    if (o.signal?.aborted) return this.end(seq, 'abort');
    // the new token is fed at position tokens.length - 1
    if (seq.tokens.length > this.contextLength) return this.end(seq, 'context');
  }

  /** Writes the page-table entries of a sequence's slot that changed since the last step. */
  private syncPageTable(seq: EngineSeq): void {
    const req = seq.request;
    const row = seq.slot * this.kvPlan.maxBlocks;
    if (this.kv.fullTable && seq.full.length > req.syncedFull) {
      writeBuffer(this.gpu, this.kv.fullTable, (row + req.syncedFull) * 4, Uint32Array.from(seq.full.slice(req.syncedFull)));
      req.syncedFull = seq.full.length;
    }
    if (this.kv.slidingTable) {
      // dropped blocks (-1) are never read again: only new pages need writing
      let from = req.syncedSliding;
      while (from < seq.sliding.length && seq.sliding[from]! < 0) from++;
      if (seq.sliding.length > from) {
        writeBuffer(this.gpu, this.kv.slidingTable, (row + from) * 4, Uint32Array.from(seq.sliding.slice(from), (p) => Math.max(p, 0)));
      }
      req.syncedSliding = seq.sliding.length;
    }
  }

  private async readIds(buf: GPUBuffer, n: number): Promise<Uint32Array> {
    await buf.mapAsync(GPUMapMode.READ, 0, n * 4);
    const ids = new Uint32Array(buf.getMappedRange(0, n * 4).slice(0));
    buf.unmap();
    return ids;
  }

  private stagingFor(bytes: number): GPUBuffer {
    if (!this.logitsStaging || this.logitsStaging.size < bytes) {
      this.logitsStaging?.destroy();
      this.logitsStaging = this.gpu.device.createBuffer({
        size: this.inputs.cap.rows * this.config.vocabSize * 4,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
    }
    return this.logitsStaging;
  }

  private async readStaging(st: GPUBuffer, floats: number): Promise<Float32Array> {
    await st.mapAsync(GPUMapMode.READ, 0, floats * 4);
    const out = new Float32Array(st.getMappedRange(0, floats * 4).slice(0));
    st.unmap();
    return out;
  }

  /**
   * GPU time of every dispatch of the next step that `when` accepts (by its tokens and sequences;
   * one timestamped pass per dispatch; needs timestamp-query). Resolves once such a step ran.
   */
  profileNextStep(when: (tokens: number, sequences: number) => boolean): Promise<{ label: string; ms: number }[]> {
    if (!this.gpu.features.timestampQuery) return Promise.reject(new Error('this adapter has no timestamp-query'));
    return new Promise((resolve) => this.profileWaiters.push({ when: (p) => when(p.tokens, p.entries.length), resolve }));
  }

  private encodeProfiled(enc: GPUCommandEncoder, items: readonly ProgramItem[], shape: StepShape) {
    const device = this.gpu.device;
    const list = items.filter((it): it is Dispatch => !('copy' in it) && groupsOf(it, shape) !== null);
    const n = list.length;
    const qs = device.createQuerySet({ type: 'timestamp', count: 2 * n });
    const resolve = device.createBuffer({ size: 16 * n, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    list.forEach((d, i) => {
      const pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
      encodeDispatches(pass, [d], shape);
      pass.end();
    });
    enc.resolveQuerySet(qs, 0, 2 * n, resolve, 0);
    return {
      count: n,
      read: async () => {
        const ts = new BigInt64Array(await readBuffer(this.gpu, resolve));
        qs.destroy();
        resolve.destroy();
        return list.map((d, i) => ({ label: d.label, ms: Number(ts[2 * i + 1]! - ts[2 * i]!) / 1e6 }));
      },
    };
  }

  /**
   * Weight bytes the kernels of the next step that `when` accepts fetch (each kernel's access
   * pattern over what the step held; the experts from the step's routing, read back for this).
   */
  countNextStep(when: (tokens: number, sequences: number) => boolean = () => true): Promise<StepBytes> {
    return new Promise((resolve) => this.byteWaiters.push({ when: (p) => when(p.tokens, p.entries.length), resolve }));
  }

  private async countBytes(f: InFlight): Promise<StepBytes> {
    const k = this.config.expertsPerToken;
    const ids = new Map<GPUBuffer, Uint32Array>();
    for (const buf of this.act.routing) {
      const raw = new Uint32Array(await readBuffer(this.gpu, buf, 0, f.shape.tokens * k * 8));
      ids.set(buf, Uint32Array.from({ length: f.shape.tokens * k }, (_, i) => raw[2 * i]!));
    }
    const routing = { ids: (b: GPUBuffer) => ids.get(b) ?? new Uint32Array(0) };
    const byKernel: Record<string, number> = {};
    let total = 0;
    for (const it of f.items) {
      if ('copy' in it || !it.weightBytes || !groupsOf(it, f.shape)) continue;
      const b = it.weightBytes(f.shape, routing);
      const key = it.label.replace(/^layers\.\d+\./, '');
      byKernel[key] = (byKernel[key] ?? 0) + b;
      total += b;
    }
    return { tokens: f.plan.tokens, sequences: f.plan.entries.length, total, byKernel };
  }

  /** The first logits row of the last step (tests compare it with the oracle's step logits). */
  async lastLogits(): Promise<Float32Array> {
    return new Float32Array(await readBuffer(this.gpu, this.act.logits, 0, this.config.vocabSize * 4));
  }

  /** Per-layer routing of the tokens of the last step: expert ids and weights, [tokens][k]. */
  async routing(layer: number, tokens: number): Promise<{ ids: Uint32Array; weights: Float32Array }> {
    const k = this.config.expertsPerToken;
    const raw = new Uint32Array(await readBuffer(this.gpu, this.act.routing[layer]!, 0, tokens * k * 8));
    const ids = new Uint32Array(tokens * k);
    const weights = new Float32Array(tokens * k);
    const wv = new Uint32Array(weights.buffer);
    for (let i = 0; i < tokens * k; i++) {
      ids[i] = raw[2 * i]!;
      wv[i] = raw[2 * i + 1]!;
    }
    return { ids, weights };
  }

  /**
   * One forward over `ids` (a single step from position 0, on an idle engine) that also keeps
   * every layer's intermediates: x after attention and after the MoE block, and the router logits.
   */
  async captureForward(ids: readonly number[]): Promise<{ attnOut: Float32Array[]; mlpOut: Float32Array[]; routerLogits: Float32Array[] }> {
    const c = this.config;
    const T = ids.length;
    if (this.isBusy) throw new Error('captureForward needs an idle engine');
    if (T > this.scheduler.o.maxBatchTokens) throw new Error(`captureForward takes at most one step (${this.scheduler.o.maxBatchTokens} tokens)`);
    const cap: Capture = {
      attnOut: c.layerTypes.map((_, i) => storageBuffer(this.gpu, T * c.hiddenSize * 4, `cap.attn_out.${i}`)),
      mlpOut: c.layerTypes.map((_, i) => storageBuffer(this.gpu, T * c.hiddenSize * 4, `cap.mlp_out.${i}`)),
      routerLogits: c.layerTypes.map((_, i) => storageBuffer(this.gpu, T * c.numExperts * 4, `cap.router.${i}`)),
    };
    const prog = buildProgram({ ctx: this.ctx, config: c, weights: this.weights, act: this.act, inputs: this.inputs, kv: this.layerKv, kvLayout: this.kvLayout, scratch: this.scratch, rope: this.rope, capture: cap });
    await this.shaders.validate();
    try {
      const done = this.enqueue(ids, { maxTokens: 0 }, { wake: false, noCache: true });
      const plan = this.scheduler.schedule()!;
      if (plan.entries.length !== 1 || plan.tokens !== T) throw new Error('captureForward: the forward did not fit one step');
      await this.finishStep(this.submitStep(plan, prog));
      await done;
      const read = async (bufs: GPUBuffer[]) => Promise.all(bufs.map(async (b) => new Float32Array(await readBuffer(this.gpu, b))));
      return { attnOut: await read(cap.attnOut), mlpOut: await read(cap.mlpOut), routerLogits: await read(cap.routerLogits) };
    } finally {
      for (const b of [...cap.attnOut, ...cap.mlpOut, ...cap.routerLogits]) b.destroy();
    }
  }

  /** Frees the engine's GPU memory (the device too, when the engine created it). */
  destroy(): void {
    for (const s of [...this.scheduler.runningSeqs(), ...this.scheduler.waitingSeqs()]) this.fail(s, new Error('the engine was destroyed'));
    if (this.ownsGpu) {
      this.gpu.device.destroy();
      return;
    }
    const { moe, ...rest } = this.act;
    const actBufs = [...(Object.values(rest).flat() as GPUBuffer[]), moe.meta, moe.order, moe.dst, moe.y];
    for (const b of [
      ...weightBuffers(this.weights),
      ...actBufs,
      ...this.kv.layers.flatMap((l) => [l.k, l.v]),
      this.rope,
      ...this.readbacks,
      this.scratch.partO,
      this.scratch.partML,
    ]) {
      b.destroy();
    }
    this.kv.fullTable?.destroy();
    this.kv.slidingTable?.destroy();
    this.plans.sliding?.destroy();
    this.plans.full?.destroy();
    this.inputs.destroy();
    this.logitsStaging?.destroy();
  }
}

function tensorBytes(t: { shape: number[]; dtypes: readonly string[] }): number {
  const n = t.shape.reduce((a, b) => a * b, 1);
  return t.dtypes.includes('U8') ? n : n * 2;
}
