// The engine: owns the device, the weights, the planned KV cache and the recorded forward
// program, and generates tokens for one sequence at a time. A decode step is one command buffer,
// one submit and one 4-byte readback (the sampled id); routing never leaves the GPU.
import { acquireGpu, type Gpu } from '../gpu/device.js';
import { ShaderCache, subgroupLayoutHolds } from '../gpu/shaders.js';
import { encodeDispatches, readBuffer, storageBuffer, uploadBuffer, writeBuffer, type Dispatch, type StepShape } from '../gpu/buffers.js';
import { openCheckpoint } from '../model/checkpoint.js';
import type { ModelConfig } from '../model/config.js';
import { OpContext } from './ops/context.js';
import { samplerMask } from './ops/sample.js';
import {
  activationBytes,
  allocateActivations,
  allocateKv,
  buildProgram,
  encodeProgram,
  type Activations,
  type Capture,
  type ForwardShape,
  type KvCache,
  type Program,
  type ProgramItem,
} from './forward.js';
import { ropeTable } from './rope.js';
import { gpuBytes, uploadWeights, type ModelWeights, type TensorSource, type UploadProgress } from './weights.js';
import { expectedTensors } from '../model/checkpoint.js';

export interface EngineOptions {
  /** Positions the KV cache holds (prompt + generated). Default: the model's max_position_embeddings. */
  context?: number;
  /** Largest prefill chunk in tokens. */
  chunk?: number;
  /** Keep logits for every prompt row (for --logits-out and tests), not only the last. */
  allLogits?: boolean;
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
  chunk: number;
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
}

/**
 * Before each token: next() gives the allowed-token bitmask (u32 words, bit i of word i >> 5 =
 * token i, ceil(vocab / 32) words) or null for no constraint; after it: accept(id) with the sampled
 * id (it may throw to end generation). A masked step still costs one writeBuffer, one submit and
 * one readback.
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
  /** Counters of the last decode step. */
  decodeStep: StepStats;
  /** Totals of the last prefill. */
  prefill: StepStats & { chunks: number };
}

const zeroStats = (): StepStats => ({ dispatches: 0, submits: 0, readbacks: 0, pipelinesCreated: 0 });

export function planMemory(config: ModelConfig, weights: number, shape: ForwardShape): MemoryPlan {
  const a = activationBytes(shape);
  return {
    weights,
    kv: a.kv,
    rope: a.rope,
    activations: a.activations,
    total: weights + a.kv + a.rope + a.activations,
    context: shape.context,
    chunk: shape.chunk,
  };
}

export class Engine {
  readonly stats: EngineStats = { decodeStep: zeroStats(), prefill: { ...zeroStats(), chunks: 0 } };
  private readonly readback: GPUBuffer;
  private busy = false;
  /** Everything one decode step encodes, in order (built once: the hot path allocates nothing). */
  private readonly decodeItems: readonly ProgramItem[];

  private constructor(
    readonly gpu: Gpu,
    readonly shaders: ShaderCache,
    readonly ctx: OpContext,
    readonly config: ModelConfig,
    readonly shape: ForwardShape,
    readonly plan: MemoryPlan,
    private readonly weights: ModelWeights,
    private readonly act: Activations,
    private readonly kv: KvCache[],
    private readonly rope: GPUBuffer,
    private readonly program: Program,
    private readonly ownsGpu: boolean,
  ) {
    this.readback = gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.decodeItems = [...program.blocks, ...program.head, program.sample];
  }

  /** Positions the KV cache holds: prompt plus generated tokens must fit. */
  get contextLength(): number {
    return this.shape.context;
  }

  /** Whether a sequence is being generated right now. */
  get isBusy(): boolean {
    return this.busy;
  }

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
    const chunk = Math.max(1, Math.min(opts.chunk ?? 256, context));
    const shape: ForwardShape = { config, chunk, logitRows: opts.allLogits ? chunk : 1, context };
    const weightBytes = expectedTensors(config).reduce((n, t) => n + gpuBytes({ ...t, byteLength: tensorBytes(t) }), 0);
    const plan = planMemory(config, weightBytes, shape);
    opts.onPlan?.(plan);

    const gpu = opts.gpu ?? (await acquireGpu({ robust: opts.robust }));
    const maxBinding = gpu.device.limits.maxStorageBufferBindingSize;
    const kvPlane = config.numKvHeads * config.headDim * 4 * context;
    if (kvPlane > maxBinding) {
      throw new Error(
        `a full-attention KV plane for context ${context} needs ${kvPlane} bytes, over this adapter's ` +
          `maxStorageBufferBindingSize ${maxBinding}; use a smaller --context`,
      );
    }
    const shaders = new ShaderCache(gpu, !opts.noSubgroups && (await subgroupLayoutHolds(gpu)));
    const ctx = new OpContext(gpu, shaders);
    const weights = await uploadWeights(gpu, shaders, src, opts.onProgress);
    const act = allocateActivations(ctx, shape);
    const kv = allocateKv(ctx, shape);
    const rope = uploadBuffer(gpu, ropeTable(config, context), 'rope');
    const program = buildProgram(ctx, shape, weights, act, kv, rope);
    await shaders.validate();
    return new Engine(gpu, shaders, ctx, config, shape, plan, weights, act, kv, rope, program, !opts.gpu);
  }

  /**
   * Runs the prompt through the model in chunks, then samples the first token on the GPU.
   * Returns false when `signal` aborted it between chunks (with a signal, each chunk finishes on
   * the GPU before the next is submitted, so the abort takes effect within one chunk).
   */
  private async prefill(
    prompt: readonly number[],
    s: SamplingOptions,
    onLogits?: (l: Float32Array) => void,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const C = this.shape.chunk;
    const stats = { ...zeroStats(), chunks: 0 };
    const created0 = this.shaders.created;
    const all = onLogits ? new Float32Array(prompt.length * this.config.vocabSize) : null;
    for (let start = 0; start < prompt.length; start += C) {
      if (signal?.aborted) return false;
      const n = Math.min(C, prompt.length - start);
      const last = start + n === prompt.length;
      writeBuffer(this.gpu, this.act.tokens, 0, Uint32Array.from(prompt.slice(start, start + n)));
      const outRows = all ? n : last ? 1 : 0;
      this.writeStep({ tokens: n, pos0: start, outRow0: n - Math.max(outRows, 1), outRows: Math.max(outRows, 1) }, s, 0);
      const enc = this.gpu.device.createCommandEncoder();
      const items: ProgramItem[] = [...this.program.blocks];
      if (outRows) items.push(...this.program.head);
      if (last) items.push(this.program.sample);
      stats.dispatches += encodeProgram(enc, items, { tokens: n, outRows: Math.max(outRows, 1) });
      if (all) {
        enc.copyBufferToBuffer(this.act.logits, 0, this.logitsStaging(n), 0, n * this.config.vocabSize * 4);
      }
      this.gpu.device.queue.submit([enc.finish()]);
      stats.submits++;
      stats.chunks++;
      // One chunk in flight at a time, so an abort (client gone, shutdown) seen between chunks
      // stops the prefill within one chunk instead of after every chunk already queued.
      if (signal && !last) await this.gpu.device.queue.onSubmittedWorkDone();
      if (all) {
        all.set(await this.readStaging(n), start * this.config.vocabSize);
        stats.readbacks++;
      }
    }
    stats.pipelinesCreated = this.shaders.created - created0;
    this.stats.prefill = stats;
    if (all && onLogits) onLogits(all);
    return true;
  }

  private staging: GPUBuffer | null = null;
  private logitsStaging(rows: number): GPUBuffer {
    const bytes = rows * this.config.vocabSize * 4;
    if (!this.staging || this.staging.size < bytes) {
      this.staging?.destroy();
      this.staging = this.gpu.device.createBuffer({
        size: this.shape.logitRows * this.config.vocabSize * 4,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
    }
    return this.staging;
  }

  private async readStaging(rows: number): Promise<Float32Array> {
    const st = this.staging!;
    await st.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(st.getMappedRange(0, rows * this.config.vocabSize * 4).slice(0));
    st.unmap();
    return out;
  }

  private writeStep(
    v: { tokens: number; pos0: number; outRow0: number; outRows: number },
    s: SamplingOptions,
    counter: number,
  ): void {
    this.ctx.writeStep({
      ...v,
      seed: s.seed ?? 0,
      counter,
      temperature: s.temperature ?? 0,
      topP: s.topP ?? 1,
      topK: s.topK ?? 0,
    });
  }

  private async readToken(enc: GPUCommandEncoder): Promise<number> {
    enc.copyBufferToBuffer(this.act.tokens, 0, this.readback, 0, 4);
    this.gpu.device.queue.submit([enc.finish()]);
    await this.readback.mapAsync(GPUMapMode.READ);
    const id = new Uint32Array(this.readback.getMappedRange(0, 4))[0]!;
    this.readback.unmap();
    return id;
  }

  async generate(prompt: readonly number[], o: GenerateOptions): Promise<GenerateResult> {
    if (this.busy) throw new Error('the engine runs one sequence at a time');
    if (!prompt.length) throw new Error('the prompt is empty');
    const V = this.config.vocabSize;
    for (const id of prompt) {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`prompt token id ${id} is outside the vocabulary [0, ${V})`);
    }
    if (prompt.length > this.shape.context) {
      throw new Error(`the prompt has ${prompt.length} tokens, more than the context of ${this.shape.context}`);
    }
    if (o.onPrefillLogits && this.shape.logitRows < this.shape.chunk) {
      throw new Error('prefill logits need an engine loaded with allLogits');
    }
    this.busy = true;
    try {
      return await this.run(prompt, o);
    } finally {
      if (o.constraint) samplerMask(this.program.sample).set(null);
      this.busy = false;
    }
  }

  private async run(prompt: readonly number[], o: GenerateOptions): Promise<GenerateResult> {
    const stop = new Set(o.stopTokens ?? []);
    const out: number[] = [];
    const t0 = performance.now();
    let finish: FinishReason = 'length';
    if (o.maxTokens <= 0) {
      await this.prefill(prompt, o, o.onPrefillLogits);
      await this.gpu.device.queue.onSubmittedWorkDone();
      return { tokens: out, finishReason: 'length', promptTokens: prompt.length, prefillMs: performance.now() - t0, decodeMs: 0 };
    }
    const constraint = o.constraint;
    if (constraint) samplerMask(this.program.sample).set(constraint.next());
    if (!(await this.prefill(prompt, o, o.onPrefillLogits, o.signal))) {
      await this.gpu.device.queue.onSubmittedWorkDone();
      return { tokens: out, finishReason: 'abort', promptTokens: prompt.length, prefillMs: performance.now() - t0, decodeMs: 0 };
    }
    // The last prefill chunk sampled the first token into tokens[0].
    let id = await this.readToken(this.gpu.device.createCommandEncoder());
    this.stats.prefill.readbacks++;
    this.stats.prefill.submits++;
    const prefillMs = performance.now() - t0;
    const t1 = performance.now();
    let pos = prompt.length;
    for (;;) {
      out.push(id);
      constraint?.accept(id);
      if (o.onToken?.(id) === false) {
        finish = 'abort';
        break;
      }
      if (stop.has(id)) {
        finish = 'stop';
        break;
      }
      if (out.length >= o.maxTokens) break;
      if (o.signal?.aborted) {
        finish = 'abort';
        break;
      }
      if (pos >= this.shape.context) {
        finish = 'context';
        break;
      }
      if (constraint) samplerMask(this.program.sample).set(constraint.next());
      id = await this.decodeStep(pos, o, out.length);
      pos++;
    }
    return { tokens: out, finishReason: finish, promptTokens: prompt.length, prefillMs, decodeMs: performance.now() - t1 };
  }

  /** Feeds tokens[0] (the last sampled id) at position `pos` and samples the next one. */
  private async decodeStep(pos: number, s: SamplingOptions, counter: number): Promise<number> {
    const created0 = this.shaders.created;
    const shape: StepShape = { tokens: 1, outRows: 1 };
    this.writeStep({ tokens: 1, pos0: pos, outRow0: 0, outRows: 1 }, s, counter);
    const enc = this.gpu.device.createCommandEncoder();
    const dispatches = encodeProgram(enc, this.decodeItems, shape);
    const id = await this.readToken(enc);
    this.stats.decodeStep = { dispatches, submits: 1, readbacks: 1, pipelinesCreated: this.shaders.created - created0 };
    return id;
  }

  /**
   * GPU time of every dispatch of one decode step at `pos` (one timestamped pass per dispatch;
   * needs timestamp-query). The step runs for real: call it only after generation is done.
   */
  async profileDecodeStep(pos: number): Promise<{ label: string; ms: number }[]> {
    if (!this.gpu.features.timestampQuery) throw new Error('this adapter has no timestamp-query');
    const items = this.decodeItems.filter(
      (it): it is Dispatch => !('copy' in it),
    );
    const n = items.length;
    const device = this.gpu.device;
    const qs = device.createQuerySet({ type: 'timestamp', count: 2 * n });
    const resolve = device.createBuffer({ size: 16 * n, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.writeStep({ tokens: 1, pos0: Math.min(pos, this.shape.context - 1), outRow0: 0, outRows: 1 }, {}, 0);
    const enc = device.createCommandEncoder();
    items.forEach((d, i) => {
      const pass = enc.beginComputePass({
        timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
      });
      encodeDispatches(pass, [d], { tokens: 1, outRows: 1 });
      pass.end();
    });
    enc.resolveQuerySet(qs, 0, 2 * n, resolve, 0);
    device.queue.submit([enc.finish()]);
    const ts = new BigInt64Array(await readBuffer(this.gpu, resolve));
    qs.destroy();
    resolve.destroy();
    return items.map((d, i) => ({ label: d.label, ms: Number(ts[2 * i + 1]! - ts[2 * i]!) / 1e6 }));
  }

  /** The logits row of the last decode step (tests compare it with the oracle's step logits). */
  async lastLogits(): Promise<Float32Array> {
    return new Float32Array(await readBuffer(this.gpu, this.act.logits, 0, this.config.vocabSize * 4));
  }

  /** Per-layer routing of the rows of the last forward: expert ids and weights, [rows][k]. */
  async routing(layer: number, rows: number): Promise<{ ids: Uint32Array; weights: Float32Array }> {
    const k = this.config.expertsPerToken;
    const raw = new Uint32Array(await readBuffer(this.gpu, this.act.routing[layer]!, 0, rows * k * 8));
    const ids = new Uint32Array(rows * k);
    const weights = new Float32Array(rows * k);
    const wv = new Uint32Array(weights.buffer);
    for (let i = 0; i < rows * k; i++) {
      ids[i] = raw[2 * i]!;
      wv[i] = raw[2 * i + 1]!;
    }
    return { ids, weights };
  }

  /**
   * One forward over `ids` (a single chunk from position 0) that also keeps every layer's
   * intermediates: x after attention and after the MoE block, and the router logits.
   */
  async captureForward(ids: readonly number[]): Promise<{ attnOut: Float32Array[]; mlpOut: Float32Array[]; routerLogits: Float32Array[] }> {
    const c = this.config;
    const T = ids.length;
    if (T > this.shape.chunk) throw new Error(`captureForward takes at most one chunk (${this.shape.chunk} tokens)`);
    const cap: Capture = {
      attnOut: c.layerTypes.map((_, i) => storageBuffer(this.gpu, T * c.hiddenSize * 4, `cap.attn_out.${i}`)),
      mlpOut: c.layerTypes.map((_, i) => storageBuffer(this.gpu, T * c.hiddenSize * 4, `cap.mlp_out.${i}`)),
      routerLogits: c.layerTypes.map((_, i) => storageBuffer(this.gpu, T * c.numExperts * 4, `cap.router.${i}`)),
    };
    const prog = buildProgram(this.ctx, this.shape, this.weights, this.act, this.kv, this.rope, cap);
    await this.shaders.validate();
    writeBuffer(this.gpu, this.act.tokens, 0, Uint32Array.from(ids));
    this.writeStep({ tokens: T, pos0: 0, outRow0: T - 1, outRows: 1 }, {}, 0);
    const enc = this.gpu.device.createCommandEncoder();
    encodeProgram(enc, prog.blocks, { tokens: T, outRows: 1 });
    this.gpu.device.queue.submit([enc.finish()]);
    const read = async (bufs: GPUBuffer[]) =>
      Promise.all(bufs.map(async (b) => new Float32Array(await readBuffer(this.gpu, b))));
    const out = { attnOut: await read(cap.attnOut), mlpOut: await read(cap.mlpOut), routerLogits: await read(cap.routerLogits) };
    for (const b of [...cap.attnOut, ...cap.mlpOut, ...cap.routerLogits]) b.destroy();
    return out;
  }

  /** Frees the engine's GPU memory (the device too, when the engine created it). */
  destroy(): void {
    if (this.ownsGpu) {
      this.gpu.device.destroy();
      return;
    }
    const layerBufs = this.weights.layers.flatMap((l) => Object.values(l) as GPUBuffer[]);
    const actBufs = Object.values(this.act).flat() as GPUBuffer[];
    for (const b of [
      ...layerBufs,
      this.weights.embedding,
      this.weights.norm,
      this.weights.unembedding,
      ...actBufs,
      ...this.kv.flatMap((k) => [k.k, k.v]),
      this.rope,
      this.readback,
    ]) {
      b.destroy();
    }
    this.staging?.destroy();
  }
}

function tensorBytes(t: { shape: number[]; dtypes: readonly string[] }): number {
  const n = t.shape.reduce((a, b) => a * b, 1);
  return t.dtypes.includes('U8') ? n : n * 2;
}
