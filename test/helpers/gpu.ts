// One pinned WebGPU device per test process (kernels.md 3.4), robustness on, with shader caches for
// the subgroup path and the portable path so every kernel test runs both.
import { acquireGpu, type Gpu } from '../../src/gpu/device.js';
import { ShaderCache, subgroupLayoutHolds } from '../../src/gpu/shaders.js';
import { readBuffer, storageBuffer, writeBuffer } from '../../src/gpu/buffers.js';

let gpuPromise: Promise<Gpu> | null = null;

export function testGpu(): Promise<Gpu> {
  gpuPromise ??= acquireGpu({ robust: true });
  return gpuPromise;
}

/**
 * The reduction paths to test: subgroups when the adapter has them (and their layout check
 * passes), and always the portable one. When the subgroup path is left out, the test output says
 * why, so a run that tested less is visible.
 */
export async function shaderVariants(): Promise<{ name: string; shaders: ShaderCache }[]> {
  const gpu = await testGpu();
  const out = [{ name: 'portable', shaders: new ShaderCache(gpu, false) }];
  if (await subgroupLayoutHolds(gpu)) {
    out.unshift({ name: 'subgroups', shaders: new ShaderCache(gpu, true) });
  } else {
    const why = gpu.features.subgroups
      ? 'its subgroups fail the layout check (shaders/subgroup_layout_check.wgsl)'
      : 'it has no subgroups feature';
    console.warn(`shaderVariants: ${gpu.info.description || gpu.info.device || 'the adapter'}: ${why}; testing the portable path only`);
  }
  return out;
}

/** A storage buffer pre-filled with NaN bits (0xffffffff), so unwritten outputs show up. */
export function poisoned(gpu: Gpu, bytes: number, label = 'poisoned'): GPUBuffer {
  const buf = storageBuffer(gpu, bytes, label);
  writeBuffer(gpu, buf, 0, new Uint32Array(Math.ceil(bytes / 4)).fill(0xffffffff));
  return buf;
}

export async function readF32(gpu: Gpu, buf: GPUBuffer, count: number, offsetElems = 0): Promise<Float32Array> {
  return new Float32Array(await readBuffer(gpu, buf, offsetElems * 4, count * 4));
}

export async function readU32(gpu: Gpu, buf: GPUBuffer, count: number, offsetElems = 0): Promise<Uint32Array> {
  return new Uint32Array(await readBuffer(gpu, buf, offsetElems * 4, count * 4));
}

export function submit(gpu: Gpu, record: (pass: GPUComputePassEncoder) => void): void {
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  record(pass);
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
}

/** Fails the test on any WebGPU validation error raised while `fn` runs. */
export async function noGpuErrors<T>(gpu: Gpu, fn: () => Promise<T> | T): Promise<T> {
  gpu.device.pushErrorScope('validation');
  const out = await fn();
  const err = await gpu.device.popErrorScope();
  if (err) throw new Error(`WebGPU validation error: ${err.message}`);
  return out;
}
