// What every kernel factory needs: the device, its pipeline cache and the Step uniform (the step's
// token, logits-row and sample counts; shaders/lib/step.wgsl), plus the per-step input arrays the
// batched engine writes before each submit.
import type { Gpu } from '../../gpu/device.js';
import type { ShaderCache } from '../../gpu/shaders.js';
import { storageBuffer, uniformBuffer, writeBuffer, type StepShape } from '../../gpu/buffers.js';

export const STEP_BYTES = 16;

/** Marks a TokInfo id as "the id last sampled for this sequence slot" (lib/step.wgsl SAMPLED_ID). */
export const SAMPLED_ID = 0x80000000;

export class OpContext {
  readonly step: GPUBuffer;
  private readonly stepWords = new Uint32Array(STEP_BYTES / 4);

  constructor(
    readonly gpu: Gpu,
    readonly shaders: ShaderCache,
  ) {
    this.step = uniformBuffer(gpu, new Uint32Array(STEP_BYTES / 4), 'step');
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
  readonly samples: GPUBuffer;
  readonly masks: GPUBuffer;
  readonly maskWords: number;
  readonly lastIds: GPUBuffer;
  readonly sampled: GPUBuffer;
  /** vec2<u32> per logits row: the unembedding's greedy pick (needs atomic-vec2u-min-max). */
  readonly argmax: GPUBuffer;

  constructor(
    gpu: Gpu,
    readonly cap: StepCapacity,
  ) {
    this.maskWords = Math.ceil(cap.vocab / 32);
    this.toks = storageBuffer(gpu, cap.tokens * TOK_INFO_WORDS * 4, 'step.toks');
    this.rows = storageBuffer(gpu, Math.max(1, cap.rows) * 4, 'step.rows');
    this.samples = storageBuffer(gpu, Math.max(1, cap.samples) * SAMPLE_ROW_WORDS * 4, 'step.samples');
    this.masks = storageBuffer(gpu, cap.seqs * this.maskWords * 4, 'step.masks');
    this.lastIds = storageBuffer(gpu, cap.seqs * 4, 'step.last_ids');
    this.sampled = storageBuffer(gpu, Math.max(1, cap.samples) * 4, 'step.sampled');
    this.argmax = storageBuffer(gpu, Math.max(1, cap.rows) * 8, 'step.argmax');
  }

  destroy(): void {
    for (const b of [this.toks, this.rows, this.samples, this.masks, this.lastIds, this.sampled, this.argmax]) b.destroy();
  }
}
