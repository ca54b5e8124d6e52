// Execute, on the GPU: a prepared step's words, page-table changes and attention plans are written,
// the program is encoded (plainly, or one timestamped pass per dispatch when a profile is asked
// for) and submitted with one command buffer, and the sampled ids come back through a ring of two
// readback buffers (a step planned ahead copies its ids while the previous one is mapped).
import { encodeDispatches, groupsOf, readBuffer, writeBuffer, type Dispatch, type StepShape } from '../gpu/buffers.js';
import type { StepStats, TokenLogprob } from './api.js';
import { LOGPROB_WORDS, NO_LOGPROBS, PROC_ROW_WORDS } from './ops/context.js';
import type { InFlight, StepExecutor } from './core.js';
import { encodeProgram, type ProgramItem } from './forward.js';
import { PageTableMirror } from './kv-cache.js';
import type { StepOutput } from './sequences.js';
import type { EngineResources } from './setup.js';
import type { PreparedStep } from './step-inputs.js';
import { NO_ATTENTION } from './step-inputs.js';

/** GPU time of each dispatch of a profiled step. */
export type DispatchTimes = { label: string; ms: number }[];

export interface GpuInFlight extends InFlight {
  /** The step's shape with its attention work: what its grids were sized by. */
  readonly shape: StepShape;
  /** What ran (countNextStep counts its bytes). */
  readonly items: readonly ProgramItem[];
  readonly readback: GPUBuffer;
  readonly staging: GPUBuffer | null;
  /** The logprobs records of the step's processed rows, when one asked. */
  readonly lpReadback: GPUBuffer | null;
  readonly timings: { count: number; read: () => Promise<DispatchTimes> } | null;
}

/** Instrumentation that watches steps (instrument.ts). */
export interface StepObserver {
  /** Whether this step is encoded with timestamps. */
  profiles(step: PreparedStep): boolean;
  /** After a step's output is back, before it is handed out. */
  finished(f: GpuInFlight): Promise<void>;
  holdsRunAhead(): boolean;
}

export class GpuStepExecutor implements StepExecutor<GpuInFlight> {
  private readonly readbacks: GPUBuffer[];
  private readonly lpReadbacks: GPUBuffer[];
  private readonly pageTables: PageTableMirror;
  private logitsStaging: GPUBuffer | null = null;
  private submits = 0;

  constructor(
    private readonly r: EngineResources,
    private readonly vocab: number,
    maxBlocks: number,
    private readonly observer: StepObserver,
  ) {
    const cap = r.inputs.cap;
    this.readbacks = [0, 1].map(() => r.ctx.gpu.device.createBuffer({ label: 'readback.ids', size: Math.max(16, cap.samples * 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }));
    this.lpReadbacks = [0, 1].map(() => r.ctx.gpu.device.createBuffer({ label: 'readback.logprobs', size: Math.max(16, Math.max(cap.samples, cap.rows) * LOGPROB_WORDS * 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }));
    this.pageTables = new PageTableMirror(r.gpu, r.kv, maxBlocks);
  }

  holdsRunAhead(): boolean {
    return this.observer.holdsRunAhead();
  }

  submit(step: PreparedStep, items: readonly ProgramItem[] = this.r.program): GpuInFlight {
    const { gpu, inputs, shaders, ctx } = this.r;
    const { plan } = step;
    const created0 = shaders.created;
    for (const { seq } of plan.entries) this.pageTables.sync(seq);
    for (const m of step.masks) writeBuffer(gpu, inputs.masks, m.slot * inputs.maskWords * 4, m.words);
    const attention = { sliding: NO_ATTENTION, full: NO_ATTENTION };
    for (const p of [this.r.attnPlans.sliding, this.r.attnPlans.full]) {
      if (!p) continue;
      p.build(step.attention);
      p.write();
      attention[p.group] = { ...p.counts };
    }
    const shape: StepShape = { ...step.shape, attention };
    writeBuffer(gpu, inputs.toks, 0, step.tokWords);
    if (shape.rows) writeBuffer(gpu, inputs.rows, 0, step.rowWords);
    if (shape.samples) writeBuffer(gpu, inputs.sampling, 0, step.sampleWords);
    if (step.procWords.length) writeBuffer(gpu, inputs.procRows, 0, step.procWords);
    if (step.entryWords.length) writeBuffer(gpu, inputs.procEntries, 0, step.entryWords);
    ctx.writeStep(shape);

    const enc = gpu.device.createCommandEncoder();
    const timings = this.observer.profiles(step) ? this.encodeProfiled(enc, items, shape) : null;
    const dispatches = timings ? timings.count : encodeProgram(enc, items, shape);
    let readbacks = 0;
    const ring = this.submits++ % 2;
    const readback = this.readbacks[ring]!;
    if (shape.samples) {
      enc.copyBufferToBuffer(inputs.sampled, 0, readback, 0, shape.samples * 4);
      readbacks++;
    }
    const logitsBytes = shape.rows * this.vocab * 4;
    const staging = step.readLogits ? this.stagingFor(logitsBytes) : null;
    if (staging) {
      enc.copyBufferToBuffer(this.r.act.logits, 0, staging, 0, logitsBytes);
      readbacks++;
    }
    const lpReadback = step.readLogprobs ? this.lpReadbacks[ring]! : null;
    if (lpReadback) {
      enc.copyBufferToBuffer(inputs.logprobs, 0, lpReadback, 0, step.procSamples.length * LOGPROB_WORDS * 4);
      readbacks++;
    }
    gpu.device.queue.submit([enc.finish()]);
    const stats: StepStats = { dispatches, submits: 1, readbacks, pipelinesCreated: shaders.created - created0 };
    return { step, stats, shape, items, readback, staging, lpReadback, timings };
  }

  async finish(f: GpuInFlight): Promise<StepOutput> {
    const n = f.shape.samples;
    // A step without a readback (a prompt chunk) is still waited for: at most two steps are in
    // flight, so an abort or a new arrival takes effect within a step or two, not after a queue.
    const ids = n ? await mapRead(f.readback, n * 4, (b) => new Uint32Array(b)) : new Uint32Array(0);
    if (!n && !f.staging) await this.r.gpu.device.queue.onSubmittedWorkDone();
    const logits = f.staging ? await mapRead(f.staging, f.shape.rows * this.vocab * 4, (b) => new Float32Array(b)) : null;
    const lp = f.lpReadback ? await mapRead(f.lpReadback, f.step.procSamples.length * LOGPROB_WORDS * 4, (b) => parseLogprobs(new Uint32Array(b), f.step)) : null;
    await this.observer.finished(f);
    return { ids, logits, logprobs: lp?.bySample ?? null, promptLogprobs: lp?.prompt };
  }

  private stagingFor(bytes: number): GPUBuffer {
    if (!this.logitsStaging || this.logitsStaging.size < bytes) {
      this.logitsStaging?.destroy();
      this.logitsStaging = this.r.ctx.gpu.device.createBuffer({
        label: 'readback.logits',
        size: this.r.inputs.cap.rows * this.vocab * 4,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
    }
    return this.logitsStaging;
  }

  private encodeProfiled(enc: GPUCommandEncoder, items: readonly ProgramItem[], shape: StepShape) {
    const gpu = this.r.gpu;
    const device = gpu.device;
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
      read: async (): Promise<DispatchTimes> => {
        const ts = new BigInt64Array(await readBuffer(gpu, resolve));
        qs.destroy();
        resolve.destroy();
        return list.map((d, i) => ({ label: d.label, ms: Number(ts[2 * i + 1]! - ts[2 * i]!) / 1e6 }));
      },
    };
  }
}

/** The records of the rows that asked for logprobs: sampled rows by sample index, prompt rows by sequence and position. */
function parseLogprobs(words: Uint32Array, step: PreparedStep): { bySample: Map<number, TokenLogprob>; prompt: NonNullable<StepOutput['promptLogprobs']> } {
  const f = new Float32Array(words.buffer, words.byteOffset, words.length);
  const bySample = new Map<number, TokenLogprob>();
  const prompt: NonNullable<StepOutput['promptLogprobs']> = [];
  step.procSamples.forEach((sample, r) => {
    if (step.procWords[r * PROC_ROW_WORDS + 4] === NO_LOGPROBS) return;
    const w = r * LOGPROB_WORDS;
    const n = words[w + 3]!;
    const top = Array.from({ length: n }, (_, j) => ({ id: words[w + 4 + 2 * j]!, logprob: f[w + 5 + 2 * j]! }));
    const lp = { logprob: f[w + 2]!, top };
    const at = step.procPrompt[r];
    if (at) prompt.push({ ...at, lp });
    else bySample.set(sample, lp);
  });
  return { bySample, prompt };
}

async function mapRead<T>(buf: GPUBuffer, bytes: number, view: (b: ArrayBuffer) => T): Promise<T> {
  await buf.mapAsync(GPUMapMode.READ, 0, bytes);
  const out = view(buf.getMappedRange(0, bytes).slice(0));
  buf.unmap();
  return out;
}
