// Buffer helpers and dispatch recording. Everything here is created once at load; the per-step
// path only encodes prebuilt (pipeline, bind group, grid) triples.
import type { Gpu } from './device.js';

export const STORAGE_USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

export function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export function storageBuffer(gpu: Gpu, size: number, label: string, usage = STORAGE_USAGE()): GPUBuffer {
  const max = gpu.device.limits.maxBufferSize;
  const bytes = Math.max(16, align(size, 16));
  if (bytes > max) throw new Error(`${label}: ${bytes} bytes exceeds the adapter's maxBufferSize ${max}`);
  return gpu.device.createBuffer({ label, size: bytes, usage });
}

export function uploadBuffer(gpu: Gpu, data: ArrayBufferView, label: string, usage = STORAGE_USAGE()): GPUBuffer {
  const buf = storageBuffer(gpu, data.byteLength, label, usage);
  writeBuffer(gpu, buf, 0, data);
  return buf;
}

/** queue.writeBuffer in bounded pieces so Dawn's staging memory stays small for huge tensors. */
export function writeBuffer(gpu: Gpu, buf: GPUBuffer, offset: number, data: ArrayBufferView): void {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const piece = 64 << 20;
  const whole = bytes.byteLength & ~3;
  for (let o = 0; o < whole; o += piece) {
    gpu.device.queue.writeBuffer(buf, offset + o, bytes, o, Math.min(piece, whole - o));
  }
  if (whole < bytes.byteLength) {
    const tail = new Uint8Array(4);
    tail.set(bytes.subarray(whole));
    gpu.device.queue.writeBuffer(buf, offset + whole, tail);
  }
}

export async function readBuffer(gpu: Gpu, src: GPUBuffer, offset = 0, size = src.size - offset): Promise<ArrayBuffer> {
  const staging = gpu.device.createBuffer({
    size: align(size, 4),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const enc = gpu.device.createCommandEncoder();
  enc.copyBufferToBuffer(src, offset, staging, 0, align(size, 4));
  gpu.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = staging.getMappedRange().slice(0, size);
  staging.unmap();
  staging.destroy();
  return out;
}

/** A uniform buffer of the given words (a kernel's parameters: gpu/params.ts packParams). */
export function uniformBuffer(gpu: Gpu, data: Uint32Array, label: string): GPUBuffer {
  return uploadBuffer(gpu, data, label, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
}

export type Binding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

/** Binds buffers to @group(0) @binding(0..n-1) in order. */
export function bindGroup(gpu: Gpu, pipeline: GPUComputePipeline, buffers: Binding[], label?: string): GPUBindGroup {
  return gpu.device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((b, i) => ({ binding: i, resource: 'buffer' in b ? b : { buffer: b } })),
  });
}

/** Attention work items of one layer group in a step (AttentionPlan.build): what sizes its grids. */
export interface AttentionWork {
  decode: number;
  prefill: number;
  combine: number;
}

export type AttentionGroup = 'sliding' | 'full';

/**
 * What varies between steps and sizes grids (src/engine/dispatch-policy.ts picks variants from
 * it): tokens in the forward, rows that need logits, rows that are sampled, sampled rows the
 * unembedding's greedy pick does not settle, and the attention work the host planned per layer
 * group. Kernel tests leave out what their kernels do not read.
 */
export interface StepShape {
  tokens: number;
  rows: number;
  samples: number;
  /** Sampled rows with logits processing or logprobs (ops/logits-process.ts); default 0. */
  processRows?: number;
  attention?: Readonly<Partial<Record<AttentionGroup, Readonly<AttentionWork>>>>;
}

export type Groups = [number, number, number];

/** The expert ids a step routed its tokens to, per routing buffer ([T][k] ids), for byte counts. */
export interface StepRouting {
  ids(routing: GPUBuffer): Uint32Array;
}

export interface Dispatch {
  label: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  /** The grid; null skips the dispatch for this step (nothing for it to do). */
  groups: Groups | ((s: StepShape) => Groups | null);
  /** Whether this variant of its kernel runs for the step (a predicate of dispatch-policy.ts); default always. */
  when?: (s: StepShape) => boolean;
  /**
   * Weight bytes the kernel fetches in a step, by its access pattern (a matrix once per token
   * tile, an expert once per (token, slot) or per tile of its rows): what bench reports.
   */
  weightBytes?: (s: StepShape, r: StepRouting) => number;
  /** Multiply-adds the dispatch executes in a step, idle and padding rows included. */
  macs?: (s: StepShape, r: StepRouting) => number;
}

/**
 * Workgroup counts for `n` groups laid out in 2D: WebGPU caps each dimension at 65535, so kernels
 * linearise `wid.x + wid.y * nwg.x` and return when past their count.
 */
export function grid(n: number, y = 1, z = 1, maxDim = 65535): [number, number, number] {
  if (n <= maxDim) return [Math.max(1, n), y, z];
  if (y !== 1) throw new Error(`grid: ${n} groups with y=${y} exceed the dimension limit`);
  const rows = Math.ceil(n / maxDim);
  return [Math.ceil(n / rows), rows, z];
}

/** The grid of a dispatch for a step, or null when it has nothing to do. */
export function groupsOf(d: Dispatch, shape: StepShape): Groups | null {
  if (d.when && !d.when(shape)) return null;
  return typeof d.groups === 'function' ? d.groups(shape) : d.groups;
}

/** Encodes dispatches into one pass, setting the pipeline only when it changes. Returns the count encoded. */
export function encodeDispatches(pass: GPUComputePassEncoder, list: readonly Dispatch[], shape: StepShape): number {
  let last: GPUComputePipeline | null = null;
  let n = 0;
  for (const d of list) {
    const g = groupsOf(d, shape);
    if (!g) continue;
    if (d.pipeline !== last) {
      pass.setPipeline(d.pipeline);
      last = d.pipeline;
    }
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(g[0], g[1], g[2]);
    n++;
  }
  return n;
}
