// The engine: owns the device, the weights, the paged KV cache and the recorded forward program,
// and generates for many sequences at once. Each step is one batch of tokens chosen by the
// scheduler (decode tokens of running sequences plus prompt chunks), one command buffer, one
// submit and one readback of the sampled ids; routing and the previous ids never leave the GPU.
//
// Where things live (docs/design.md): setup.ts plans and allocates, core.ts runs the step loop
// (schedule → prepare inputs → execute → update from output) without touching the GPU,
// scheduler.ts and kv-pages.ts decide what each step holds, sequences.ts is the request
// lifecycle, step-inputs.ts prepares the step's inputs, step-exec.ts executes it on the GPU,
// dispatch-policy.ts picks each kernel's variant, instrument.ts looks inside steps.
import { acquireGpu, type Gpu } from '../gpu/device.js';
import type { ShaderCache } from '../gpu/shaders.js';
import { openCheckpoint } from '../model/checkpoint.js';
import type { ModelConfig } from '../model/config.js';
import type { BatchingState, EngineOptions, EngineStats, GenerateOptions, GenerateResult, MemoryPlan, StepBytes, StepSize } from './api.js';
import { EngineCore } from './core.js';
import { Speculator } from './speculative/speculator.js';
import { Instruments, type ForwardCapture } from './instrument.js';
import type { KvPlan } from './kv-cache.js';
import type { Scheduler } from './scheduler.js';
import type { SeqRequest } from './sequences.js';
import { allocateEngine, destroyResources, planEngine, type EngineResources } from './setup.js';
import { GpuStepExecutor, type DispatchTimes, type GpuInFlight } from './step-exec.js';
import type { TensorSource } from './weights.js';

export * from './api.js';

export class Engine {
  private readonly core: EngineCore<GpuInFlight>;
  private readonly exec: GpuStepExecutor;
  private readonly instruments: Instruments;
  private destroyed = false;

  private constructor(
    private readonly res: EngineResources,
    readonly config: ModelConfig,
    /** What the engine allocated, and for what sizes. */
    readonly memoryPlan: MemoryPlan,
    /** The KV cache's pages. */
    readonly kvPlan: KvPlan,
    core: (exec: GpuStepExecutor) => EngineCore<GpuInFlight>,
    private readonly speculative?: EngineOptions['speculative'],
  ) {
    this.instruments = new Instruments(res, config);
    this.exec = new GpuStepExecutor(res, config.vocabSize, kvPlan.maxBlocks, this.instruments);
    this.core = core(this.exec);
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
    const gpu = opts.gpu ?? (await acquireGpu({ robust: opts.robust }));
    try {
      const plan = planEngine(src.config, opts, gpu.device.limits.maxStorageBufferBindingSize);
      opts.onPlan?.(plan.memoryPlan);
      const res = await allocateEngine(gpu, !opts.gpu, src, plan, opts);
      return new Engine(res, plan.config, plan.memoryPlan, plan.kvPlan, (exec) => {
        return new EngineCore(exec, {
          scheduler: plan.scheduler,
          vocab: plan.config.vocabSize,
          rows: plan.rows,
          maskWords: res.inputs.maskWords,
          allLogits: plan.allLogits,
          runAhead: plan.runAhead,
          samples: plan.samples,
          speculator: opts.speculative ? new Speculator(opts.speculative) : undefined,
          faultHook: opts.faultHook,
          log: opts.log,
        });
      });
    } catch (e) {
      if (!opts.gpu) gpu.device.destroy();
      throw e;
    }
  }

  get gpu(): Gpu {
    return this.res.gpu;
  }

  get shaders(): ShaderCache {
    return this.res.shaders;
  }

  /** Whether the subgroup-matrix (tensor core) GEMMs run, and why. */
  get subgroupMatrix(): { used: boolean; moe: boolean; reason: string } {
    return this.res.subgroupMatrix;
  }

  /** The continuous-batching scheduler (its pools: tests). */
  get scheduler(): Scheduler<SeqRequest> {
    return this.core.scheduler;
  }

  get stats(): EngineStats {
    return this.core.stats;
  }

  /** Positions one sequence may reach: prompt plus generated tokens must fit. */
  get contextLength(): number {
    return this.core.contextLength;
  }

  /** Whether any sequence is running or waiting. */
  get isBusy(): boolean {
    return this.core.isBusy;
  }

  get maxNumSeqs(): number {
    return this.memoryPlan.maxNumSeqs;
  }

  /** Called after each step is submitted with its size (the server's batch-size histogram). */
  get onStep(): ((s: StepSize) => void) | null {
    return this.core.onStep;
  }

  set onStep(f: ((s: StepSize) => void) | null) {
    this.core.onStep = f;
  }

  /** The batch as /metrics shows it: sequences, KV pages of the full-attention group (or the sliding one), cache hits. */
  batching(): BatchingState {
    return this.core.batching();
  }

  /**
   * Generates for one sequence. Any number of calls may run at once: they join the running batch
   * (continuous batching) and each resolves when its sequence ends.
   */
  generate(prompt: readonly number[], o: GenerateOptions): Promise<GenerateResult> {
    return this.core.generate(prompt, o);
  }

  /**
   * Resolves once `n` steps have been submitted (at once for n = 0): requests that join a running
   * batch at a given step (generate --requests arrival_step).
   */
  afterSteps(n: number): Promise<void> {
    return this.core.afterSteps(n);
  }

  /**
   * GPU time of every dispatch of the next step that `when` accepts (by its tokens and sequences;
   * one timestamped pass per dispatch; needs timestamp-query). Resolves once such a step ran.
   */
  profileNextStep(when: (tokens: number, sequences: number, samples: number) => boolean): Promise<DispatchTimes> {
    return this.instruments.profileNextStep(when);
  }

  /**
   * Weight bytes the kernels of the next step that `when` accepts fetch (each kernel's access
   * pattern over what the step held; the experts from the step's routing, read back for this).
   */
  countNextStep(when: (tokens: number, sequences: number, samples: number) => boolean = () => true): Promise<StepBytes> {
    return this.instruments.countNextStep(when);
  }

  /** The first logits row of the last step (tests compare it with the oracle's step logits). */
  lastLogits(): Promise<Float32Array> {
    return this.instruments.lastLogits();
  }

  /** Per-layer routing of the tokens of the last step: expert ids and weights, [tokens][k]. */
  routing(layer: number, tokens: number): Promise<{ ids: Uint32Array; weights: Float32Array }> {
    return this.instruments.routing(layer, tokens);
  }

  /**
   * One forward over `ids` (a single step from position 0, on an idle engine) that also keeps
   * every layer's intermediates: x after attention and after the MoE block, and the router logits.
   */
  captureForward(ids: readonly number[]): Promise<ForwardCapture> {
    return this.instruments.captureForward(this.core, this.exec, ids);
  }

  /** Frees the engine's GPU memory, every buffer it made (the device too, when the engine created it). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.core.close(new Error('the engine was destroyed'));
    destroyResources(this.res);
    this.speculative?.proposer.destroy?.();
  }
}
