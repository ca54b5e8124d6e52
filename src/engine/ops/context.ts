// What every kernel factory needs: the device, its pipeline cache and the shared Step buffer.
import type { Gpu } from '../../gpu/device.js';
import type { ShaderCache } from '../../gpu/shaders.js';
import { uniformBuffer, writeBuffer } from '../../gpu/buffers.js';

export interface StepValues {
  tokens: number;
  pos0: number;
  outRow0: number;
  outRows: number;
  seed: number;
  counter: number;
  temperature: number;
  topP: number;
  topK: number;
}

export const STEP_BYTES = 48;

export function encodeStep(v: StepValues): Uint32Array {
  const buf = new ArrayBuffer(STEP_BYTES);
  const u = new Uint32Array(buf);
  const f = new Float32Array(buf);
  u[0] = v.tokens;
  u[1] = v.pos0;
  u[2] = v.outRow0;
  u[3] = v.outRows;
  u[4] = v.seed >>> 0;
  u[5] = v.counter >>> 0;
  f[6] = v.temperature;
  f[7] = v.topP;
  u[8] = v.topK;
  return u;
}

export class OpContext {
  readonly step: GPUBuffer;

  constructor(
    readonly gpu: Gpu,
    readonly shaders: ShaderCache,
  ) {
    this.step = uniformBuffer(gpu, new Uint32Array(STEP_BYTES / 4), 'step');
  }

  writeStep(v: StepValues): void {
    writeBuffer(this.gpu, this.step, 0, encodeStep(v));
  }

  /** Workgroup size for reductions: 256 threads, or fewer where the adapter caps it. */
  get wg(): number {
    return Math.min(256, this.gpu.device.limits.maxComputeInvocationsPerWorkgroup);
  }
}
