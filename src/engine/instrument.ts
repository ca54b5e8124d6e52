// Looking inside steps, for tests, bench and debugging: per-dispatch GPU times of a chosen step,
// the weight bytes its kernels fetched, the last step's logits and routing, and a forward that
// keeps every layer's intermediates (captureForward). None of it runs unless asked for.
import { groupsOf, readBuffer, storageBuffer } from '../gpu/buffers.js';
import type { ModelConfig } from '../model/config.js';
import type { StepBytes } from './api.js';
import type { EngineCore } from './core.js';
import { buildProgram, type Capture } from './forward.js';
import type { EngineResources } from './setup.js';
import type { DispatchTimes, GpuInFlight, GpuStepExecutor, StepObserver } from './step-exec.js';
import type { PreparedStep } from './step-inputs.js';

/** Tokens, sequences and sampled rows of a step. */
type StepFilter = (tokens: number, sequences: number, samples: number) => boolean;

const accepts = (when: StepFilter, s: PreparedStep) => when(s.plan.tokens, s.plan.entries.length, s.shape.samples);

export interface ForwardCapture {
  /** Per layer, f32 [T][H]: x after the attention block, and after the MoE block. */
  attnOut: Float32Array[];
  mlpOut: Float32Array[];
  /** Per layer, f32 [T][E]. */
  routerLogits: Float32Array[];
}

export class Instruments implements StepObserver {
  private profileWaiters: Array<{ when: StepFilter; resolve: (r: DispatchTimes) => void }> = [];
  private byteWaiters: Array<{ when: StepFilter; resolve: (b: StepBytes) => void }> = [];

  constructor(
    private readonly r: EngineResources,
    private readonly config: ModelConfig,
  ) {}

  /** GPU time of every dispatch of the next step that `when` accepts (needs timestamp-query). */
  profileNextStep(when: StepFilter): Promise<DispatchTimes> {
    if (!this.r.gpu.features.timestampQuery) return Promise.reject(new Error('this adapter has no timestamp-query'));
    return new Promise((resolve) => this.profileWaiters.push({ when, resolve }));
  }

  /** Weight bytes the kernels of the next step that `when` accepts fetch. */
  countNextStep(when: StepFilter): Promise<StepBytes> {
    return new Promise((resolve) => this.byteWaiters.push({ when, resolve }));
  }

  profiles(step: PreparedStep): boolean {
    return this.profileWaiters.some((w) => accepts(w.when, step));
  }

  // profiling and byte counts read the step's buffers after it: nothing may overwrite them first
  holdsRunAhead(): boolean {
    return this.profileWaiters.length > 0 || this.byteWaiters.length > 0;
  }

  async finished(f: GpuInFlight): Promise<void> {
    if (f.timings) {
      const times = await f.timings.read();
      const i = this.profileWaiters.findIndex((w) => accepts(w.when, f.step));
      if (i >= 0) this.profileWaiters.splice(i, 1)[0]!.resolve(times);
    }
    const b = this.byteWaiters.findIndex((w) => accepts(w.when, f.step));
    if (b >= 0) this.byteWaiters.splice(b, 1)[0]!.resolve(await this.countBytes(f));
  }

  /** Each kernel's access pattern over what the step held; the experts from its routing, read back for this. */
  private async countBytes(f: GpuInFlight): Promise<StepBytes> {
    const k = this.config.expertsPerToken;
    const T = f.shape.tokens;
    const ids = new Map<GPUBuffer, Uint32Array>();
    for (const buf of this.r.act.routing) {
      const raw = new Uint32Array(await readBuffer(this.r.gpu, buf, 0, T * k * 8));
      ids.set(buf, Uint32Array.from({ length: T * k }, (_, i) => raw[2 * i]!));
    }
    const routing = { ids: (b: GPUBuffer) => ids.get(b) ?? new Uint32Array(0) };
    const byKernel: Record<string, number> = {};
    const macsByKernel: Record<string, number> = {};
    let total = 0;
    let macs = 0;
    for (const it of f.items) {
      if ('copy' in it || !groupsOf(it, f.shape)) continue;
      const key = it.label.replace(/^layers\.\d+\./, '');
      if (it.weightBytes) {
        const bytes = it.weightBytes(f.shape, routing);
        byKernel[key] = (byKernel[key] ?? 0) + bytes;
        total += bytes;
      }
      if (it.macs) {
        const m = it.macs(f.shape, routing);
        if (m) macsByKernel[key] = (macsByKernel[key] ?? 0) + m;
        macs += m;
      }
    }
    const usedExperts = [...ids.values()].reduce((n, layer) => n + new Set(layer).size, 0);
    return { tokens: T, sequences: f.step.plan.entries.length, rows: f.shape.rows, total, byKernel, macs, macsByKernel, usedExperts };
  }

  /** The first logits row of the last step. */
  async lastLogits(): Promise<Float32Array> {
    return new Float32Array(await readBuffer(this.r.gpu, this.r.act.logits, 0, this.config.vocabSize * 4));
  }

  /** Per-layer routing of the tokens of the last step: expert ids and weights, [tokens][k]. */
  async routing(layer: number, tokens: number): Promise<{ ids: Uint32Array; weights: Float32Array }> {
    const k = this.config.expertsPerToken;
    const raw = new Uint32Array(await readBuffer(this.r.gpu, this.r.act.routing[layer]!, 0, tokens * k * 8));
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
   * One forward over `ids` (a single step from position 0, on an idle engine) through a copy of
   * the program that also keeps every layer's intermediates, whichever variants the step's size
   * picks. The copy's buffers (its uniforms, the captures) are freed after.
   */
  async captureForward(core: EngineCore<GpuInFlight>, exec: GpuStepExecutor, ids: readonly number[]): Promise<ForwardCapture> {
    const c = this.config;
    const r = this.r;
    const T = ids.length;
    if (core.isBusy) throw new Error('captureForward needs an idle engine');
    const maxTokens = core.scheduler.o.maxBatchTokens;
    if (T > maxTokens) throw new Error(`captureForward takes at most one step (${maxTokens} tokens)`);
    const scope = r.ctx.scoped();
    try {
      const g = scope.gpu;
      const cap: Capture = {
        attnOut: c.layerTypes.map((_, i) => storageBuffer(g, T * c.hiddenSize * 4, `cap.attn_out.${i}`)),
        mlpOut: c.layerTypes.map((_, i) => storageBuffer(g, T * c.hiddenSize * 4, `cap.mlp_out.${i}`)),
        routerLogits: c.layerTypes.map((_, i) => storageBuffer(g, T * c.numExperts * 4, `cap.router.${i}`)),
      };
      const program = buildProgram({ ctx: scope, config: c, weights: r.weights, act: r.act, inputs: r.inputs, kv: r.layerKv, kvLayout: r.kvLayout, scratch: r.scratch, rope: r.rope, capture: cap });
      await r.shaders.validate();
      await core.runOneStep(ids, (step) => exec.submit(step, program));
      const read = (bufs: GPUBuffer[]) => Promise.all(bufs.map(async (b) => new Float32Array(await readBuffer(r.gpu, b))));
      return { attnOut: await read(cap.attnOut), mlpOut: await read(cap.mlpOut), routerLogits: await read(cap.routerLogits) };
    } finally {
      scope.destroy();
    }
  }
}
