// What every kernel factory needs: the device, its pipeline cache and the Step uniform (the step's
// token, logits-row and sample counts; shaders/lib/step.wgsl), plus the per-step input arrays the
// batched engine writes before each submit. OpContext also owns every buffer made through it:
// `ctx.gpu` is the device seen through a registry, so whatever a factory, the weights upload or
// the engine allocates with it (uniform params, sampler scratch, the Step uniform) is freed by
// destroy(), with no hand-kept list.
import type { Gpu } from '../../gpu/device.js';
import type { ShaderCache } from '../../gpu/shaders.js';
import { storageBuffer, uniformBuffer, writeBuffer, type StepShape } from '../../gpu/buffers.js';

export const STEP_BYTES = 16;

/** Marks a TokInfo id as "the id last sampled for this sequence slot" (lib/step.wgsl SAMPLED_ID). */
export const SAMPLED_ID = 0x80000000;

/** Every buffer created through one device view, destroyed together. */
export class BufferRegistry {
  private readonly buffers = new Set<GPUBuffer>();

  /** `gpu` with its device's createBuffer recording here (everything else passes through). */
  track(gpu: Gpu): Gpu {
    const device = gpu.device;
    const add = (b: GPUBuffer) => (this.buffers.add(b), b);
    const view = new Proxy(device, {
      get(target, key) {
        if (key === 'createBuffer') return (d: GPUBufferDescriptor) => add(target.createBuffer(d));
        const v = Reflect.get(target, key, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    return { ...gpu, device: view };
  }

  get size(): number {
    return this.buffers.size;
  }

  destroyAll(): void {
    for (const b of this.buffers) b.destroy();
    this.buffers.clear();
  }
}

export class OpContext {
  /** The device through the buffer registry: allocate engine-lifetime buffers with this. */
  readonly gpu: Gpu;
  readonly buffers = new BufferRegistry();
  readonly step: GPUBuffer;
  private readonly stepWords = new Uint32Array(STEP_BYTES / 4);

  constructor(
    /** The device itself: for transient buffers their user destroys (readbacks of tests and tools). */
    readonly rawGpu: Gpu,
    readonly shaders: ShaderCache,
    /** The Step uniform of a parent context (scoped()); default a new one. */
    step?: GPUBuffer,
  ) {
    this.gpu = this.buffers.track(rawGpu);
    this.step = step ?? uniformBuffer(this.gpu, new Uint32Array(STEP_BYTES / 4), 'step');
  }

  /**
   * A context for objects that live shorter than this one (a program built for one call): the
   * same device, shaders and Step uniform, its own registry, so its destroy() frees only them.
   */
  scoped(): OpContext {
    return new OpContext(this.rawGpu, this.shaders, this.step);
  }

  /** Frees every buffer made through `gpu`. */
  destroy(): void {
    this.buffers.destroyAll();
  }

  /** Writes the step's counts (one writeBuffer). */
  writeStep(s: Pick<StepShape, 'tokens' | 'rows' | 'samples'>): void {
    this.stepWords[0] = s.tokens;
    this.stepWords[1] = s.rows;
    this.stepWords[2] = s.samples;
    writeBuffer(this.gpu, this.step, 0, this.stepWords);
  }

  /** Workgroup size for reductions: 256 threads, or fewer where the adapter caps it. */
  get wg(): number {
    return Math.min(256, this.gpu.device.limits.maxComputeInvocationsPerWorkgroup);
  }
}

/** Per-token input of a step (lib/step.wgsl TokInfo): 4 u32 per token. */
export const TOK_INFO_WORDS = 4;
/** Per-sample-row settings (shaders/sample.wgsl SampleRow): 8 u32 per row. */
export const SAMPLE_ROW_WORDS = 8;

/** Per processed row (logits_process.wgsl ProcRow): 8 u32. */
export const PROC_ROW_WORDS = 8;
/** Per biased or penalised token (logits_process.wgsl Entry): 4 u32. */
export const PROC_ENTRY_WORDS = 4;
/** Bias and penalty entries one step may hold, over all its rows. */
export const PROC_ENTRIES = 65536;
/** Most top logprobs a row may ask for (OpenAI's limit for chat). */
export const MAX_TOP_LOGPROBS = 20;
/** u32 words of one logprobs record: normaliser, chosen id, chosen logprob, top count, then (id, logprob) pairs. */
export const LOGPROB_WORDS = 4 + 2 * MAX_TOP_LOGPROBS;
/** ProcRow.top of a row that wants no logprobs. */
export const NO_LOGPROBS = 0xffffffff;
/** ProcRow.given of a sampled row (its logprob is the sampled token's). */
export const NO_GIVEN = 0xffffffff;

export interface StepCapacity {
  tokens: number;
  rows: number;
  samples: number;
  /** Sequence slots (rows of the page tables, of last_ids and of the masks). */
  seqs: number;
  vocab: number;
}

/**
 * The arrays a step's kernels read besides the weights: token ids/positions/slots, the logits rows,
 * the sample rows and their masks; and what the sampler writes: this step's ids (read back) and
 * each slot's last id (read by the next step's embedding on the GPU).
 */
export class StepInputs {
  readonly toks: GPUBuffer;
  readonly rows: GPUBuffer;
  /** SampleRow settings [samples]. */
  readonly sampling: GPUBuffer;
  readonly masks: GPUBuffer;
  readonly maskWords: number;
  readonly lastIds: GPUBuffer;
  readonly sampled: GPUBuffer;
  /** vec2<u32> per logits row: the unembedding's greedy pick (needs atomic-vec2u-min-max). */
  readonly argmax: GPUBuffer;
  /** ProcRow per processed sample row, their bias/penalty entries, and their logprobs records (read back). */
  readonly procRows: GPUBuffer;
  readonly procEntries: GPUBuffer;
  readonly logprobs: GPUBuffer;

  constructor(
    gpu: Gpu,
    readonly cap: StepCapacity,
  ) {
    this.maskWords = Math.ceil(cap.vocab / 32);
    this.toks = storageBuffer(gpu, cap.tokens * TOK_INFO_WORDS * 4, 'step.toks');
    this.rows = storageBuffer(gpu, Math.max(1, cap.rows) * 4, 'step.rows');
    this.sampling = storageBuffer(gpu, Math.max(1, cap.samples) * SAMPLE_ROW_WORDS * 4, 'step.sampling');
    this.masks = storageBuffer(gpu, cap.seqs * this.maskWords * 4, 'step.masks');
    this.lastIds = storageBuffer(gpu, cap.seqs * 4, 'step.last_ids');
    this.sampled = storageBuffer(gpu, Math.max(1, cap.samples) * 4, 'step.sampled');
    this.argmax = storageBuffer(gpu, Math.max(1, cap.rows) * 8, 'step.argmax');
    // a processed row is a sampled row or a prompt row asking for the next prompt token's logprob
    this.procRows = storageBuffer(gpu, Math.max(1, cap.samples, cap.rows) * PROC_ROW_WORDS * 4, 'step.proc_rows');
    this.procEntries = storageBuffer(gpu, PROC_ENTRIES * PROC_ENTRY_WORDS * 4, 'step.proc_entries');
    this.logprobs = storageBuffer(gpu, Math.max(1, cap.samples, cap.rows) * LOGPROB_WORDS * 4, 'step.logprobs');
  }

  destroy(): void {
    for (const b of [this.toks, this.rows, this.sampling, this.masks, this.lastIds, this.sampled, this.argmax, this.procRows, this.procEntries, this.logprobs]) b.destroy();
  }
}
