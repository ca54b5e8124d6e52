// Uploads a checkpoint's canonical tensors to GPU buffers. Matrices and MXFP4 experts keep their
// checkpoint bytes (bf16 pairs, 4-bit blocks + u8 scales); small vectors (norms, biases, sinks)
// are widened to f32. Big tensors stream from disk in bounded chunks, so peak host memory is a
// constant plus one chunk, never the whole checkpoint.
import type { Gpu } from '../gpu/device.js';
import { bindGroup, grid, storageBuffer, uniformBuffer, writeBuffer } from '../gpu/buffers.js';
import { KERNEL_PARAMS } from '../gpu/kernel-params.js';
import { packParams } from '../gpu/params.js';
import type { ShaderCache } from '../gpu/shaders.js';
import type { TensorStats } from '../model/synthetic.js';
import type { CanonicalTensor, Checkpoint } from '../model/checkpoint.js';
import type { ModelConfig } from '../model/config.js';

/**
 * One storage binding's worth of a tensor split along its first dimension (vocabulary rows of the
 * embeddings, experts of the MoE tensors), for adapters whose maxStorageBufferBindingSize is
 * smaller than the tensor (128 MiB on lavapipe and in browsers; the 20b unembedding is 1.16 GB).
 */
export interface Shard {
  buffer: GPUBuffer;
  /** First row (or expert) the buffer holds. */
  first: number;
  count: number;
}

/** The MXFP4 experts [first, first + count) of one layer, each tensor one binding. */
export interface ExpertShard {
  first: number;
  count: number;
  mlp1Blocks: GPUBuffer;
  mlp1Scales: GPUBuffer;
  mlp1Bias: GPUBuffer;
  mlp2Blocks: GPUBuffer;
  mlp2Scales: GPUBuffer;
  mlp2Bias: GPUBuffer;
}

export interface LayerWeights {
  attnNorm: GPUBuffer;
  qkvWeight: GPUBuffer;
  qkvBias: GPUBuffer;
  sinks: GPUBuffer;
  outWeight: GPUBuffer;
  outBias: GPUBuffer;
  mlpNorm: GPUBuffer;
  routerWeight: GPUBuffer;
  routerBias: GPUBuffer;
  experts: ExpertShard[];
}

export interface ModelWeights {
  embedding: Shard[];
  layers: LayerWeights[];
  norm: GPUBuffer;
  unembedding: Shard[];
  bytes: number;
  /**
   * The smallest and largest MXFP4 scale byte of every expert (lo > hi when none): decides whether
   * the subgroup-matrix MoE's f16 decode is exact for this checkpoint (dispatch-policy.ts).
   */
  mxfp4Scales: { lo: number; hi: number };
}

/** How each canonical tensor lives on the GPU: raw bytes, or widened to f32. */
function isVector(name: string): boolean {
  return /(norm|bias|sinks)$/.test(name) || name === 'norm';
}

export function gpuBytes(t: { name: string; shape: number[]; byteLength: number }): number {
  return isVector(t.name) ? t.shape.reduce((a, b) => a * b, 1) * 4 : t.byteLength;
}

/** A checkpoint on disk (or anything that streams canonical tensors the same way). */
export type StreamSource = Pick<Checkpoint, 'config' | 'tensor' | 'readChunks' | 'readF32'>;

/** A synthetic model whose tensors the GPU fills with random values in place. */
export interface FillSource {
  config: ModelConfig;
  tensor(name: string): CanonicalTensor;
  fill(name: string): TensorStats & { seed: number };
  /** Rows (of the first dimension) written over the fill, by index: their bytes as on the GPU. */
  rows?(name: string): ReadonlyMap<number, Uint8Array>;
}

export type TensorSource = StreamSource | FillSource;

export interface UploadProgress {
  (done: number, total: number, tensor: string): void;
}

const EXPERT_TENSORS = ['mlp1.blocks', 'mlp1.scales', 'mlp1.bias', 'mlp2.blocks', 'mlp2.scales', 'mlp2.bias'] as const;
const LAYER_TENSORS = ['attn_norm', 'qkv.weight', 'qkv.bias', 'sinks', 'attn_out.weight', 'attn_out.bias', 'mlp_norm', 'router.weight', 'router.bias'] as const;

/**
 * Ranges [first, first + count) of a first dimension of `units` so each range's bytes fit one
 * binding. `even` keeps counts even (expert ranges: scale bytes then start 4-byte aligned).
 */
export function shardRanges(units: number, unitBytes: number, maxBinding: number, what: string, even = false): { first: number; count: number }[] {
  let per = Math.floor(maxBinding / unitBytes);
  if (even && per > 1 && per < units) per -= per % 2;
  if (per < 1) throw new Error(`${what}: one row or expert (${unitBytes} bytes) exceeds the binding limit ${maxBinding}`);
  const out = [];
  for (let first = 0; first < units; first += per) out.push({ first, count: Math.min(per, units - first) });
  return out;
}

export interface UploadOptions {
  /**
   * Largest binding of a shard of the embeddings and experts (default, and at most: the adapter's
   * maxStorageBufferBindingSize); tests set it low to exercise the splits on tiny models.
   */
  shardBytes?: number;
  onProgress?: UploadProgress;
}

export async function uploadWeights(gpu: Gpu, shaders: ShaderCache, src: TensorSource, opts: UploadOptions = {}): Promise<ModelWeights> {
  const cfg: ModelConfig = src.config;
  const maxBinding = gpu.device.limits.maxStorageBufferBindingSize;
  const shardBytes = Math.min(opts.shardBytes ?? maxBinding, maxBinding);
  const names = [
    'embedding',
    ...Array.from({ length: cfg.numLayers }, (_, i) => [...LAYER_TENSORS, ...EXPERT_TENSORS].map((n) => `layers.${i}.${n}`)).flat(),
    'norm',
    'unembedding',
  ];
  const tensors = new Map(names.map((n) => [n, src.tensor(n)]));
  const total = [...tensors.values()].reduce((a, t) => a + gpuBytes(t), 0);
  let done = 0;
  let sinceFlush = 0;
  const scaleRange = { lo: 255, hi: 0 };
  const seeScales = (name: string, bytes: Uint8Array) => {
    if (!name.endsWith('.scales')) return;
    let { lo, hi } = scaleRange;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      if (b < lo) lo = b;
      if (b > hi) hi = b;
    }
    Object.assign(scaleRange, { lo, hi });
  };
  /** Uploads rows [first, first + count) of a tensor's first dimension into a buffer of their own. */
  const load = async (t: CanonicalTensor, first: number, count: number, units: number): Promise<GPUBuffer> => {
    const size = (gpuBytes(t) / units) * count;
    if (size > maxBinding) {
      throw new Error(`tensor "${t.name}" needs ${size} bytes on the GPU, over this adapter's maxStorageBufferBindingSize ${maxBinding}`);
    }
    const buf = storageBuffer(gpu, size, count === units ? t.name : `${t.name}[${first}:${first + count}]`);
    if ('fill' in src) {
      fillTensor(gpu, shaders, src, t, buf, ((gpuBytes(t) / units) * first) / 4, size / 4);
      const f = src.fill(t.name);
      if (f.kind === 'scales' && t.name.endsWith('.scales')) seeScales(t.name, Uint8Array.of(f.lo, f.lo + f.span - 1));
      const rowBytes = gpuBytes(t) / t.shape[0]!;
      const begin = (gpuBytes(t) / units) * first;
      for (const [row, bytes] of src.rows?.(t.name) ?? []) {
        const at = row * rowBytes - begin;
        if (at >= 0 && at + rowBytes <= size) {
          writeBuffer(gpu, buf, at, bytes);
          seeScales(t.name, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        }
      }
    } else await uploadTensor(gpu, src, t, buf, first, count, units, (chunk) => seeScales(t.name, chunk));
    done += size;
    sinceFlush += size;
    // Bound Dawn's staging memory: let the queue drain every few hundred MB.
    if (sinceFlush > 256 << 20) {
      await gpu.device.queue.onSubmittedWorkDone();
      sinceFlush = 0;
    }
    opts.onProgress?.(done, total, t.name);
    return buf;
  };
  const whole = (name: string) => {
    const t = tensors.get(name)!;
    return load(t, 0, 1, 1);
  };
  const rows = async (name: string): Promise<Shard[]> => {
    const t = tensors.get(name)!;
    const units = t.shape[0]!;
    const out: Shard[] = [];
    for (const r of shardRanges(units, gpuBytes(t) / units, shardBytes, name)) out.push({ ...r, buffer: await load(t, r.first, r.count, units) });
    return out;
  };

  const embedding = await rows('embedding');
  const layers: LayerWeights[] = [];
  for (let i = 0; i < cfg.numLayers; i++) {
    const l = (n: string) => whole(`layers.${i}.${n}`);
    const attn = {
      attnNorm: await l('attn_norm'),
      qkvWeight: await l('qkv.weight'),
      qkvBias: await l('qkv.bias'),
      sinks: await l('sinks'),
      outWeight: await l('attn_out.weight'),
      outBias: await l('attn_out.bias'),
      mlpNorm: await l('mlp_norm'),
      routerWeight: await l('router.weight'),
      routerBias: await l('router.bias'),
    };
    // one expert partition for every expert tensor of the layer, sized by the largest per expert
    const E = cfg.numExperts;
    const perExpert = Math.max(...EXPERT_TENSORS.map((n) => gpuBytes(tensors.get(`layers.${i}.${n}`)!) / E));
    const experts: ExpertShard[] = [];
    for (const r of shardRanges(E, perExpert, shardBytes, `layers.${i} experts`, true)) {
      const ex = (n: string) => load(tensors.get(`layers.${i}.${n}`)!, r.first, r.count, E);
      experts.push({
        ...r,
        mlp1Blocks: await ex('mlp1.blocks'),
        mlp1Scales: await ex('mlp1.scales'),
        mlp1Bias: await ex('mlp1.bias'),
        mlp2Blocks: await ex('mlp2.blocks'),
        mlp2Scales: await ex('mlp2.scales'),
        mlp2Bias: await ex('mlp2.bias'),
      });
    }
    layers.push({ ...attn, experts });
  }
  const norm = await whole('norm');
  const unembedding = await rows('unembedding');
  await gpu.device.queue.onSubmittedWorkDone();
  return { embedding, layers, norm, unembedding, bytes: total, mxfp4Scales: scaleRange };
}

async function uploadTensor(
  gpu: Gpu,
  src: StreamSource,
  t: CanonicalTensor,
  buf: GPUBuffer,
  first: number,
  count: number,
  units: number,
  onChunk?: (chunk: Uint8Array) => void,
): Promise<void> {
  if (isVector(t.name)) {
    const all = await src.readF32(t);
    const per = all.length / units;
    writeBuffer(gpu, buf, 0, all.subarray(first * per, (first + count) * per));
    return;
  }
  const per = t.byteLength / units;
  const range = { begin: first * per, end: (first + count) * per };
  let offset = 0;
  for await (const chunk of src.readChunks(t, 64 << 20, range)) {
    writeBuffer(gpu, buf, offset, chunk);
    onChunk?.(chunk);
    offset += chunk.byteLength;
  }
  if (offset !== range.end - range.begin) {
    throw new Error(`tensor "${t.name}": read ${offset} bytes, expected ${range.end - range.begin}`);
  }
}

function fillTensor(gpu: Gpu, shaders: ShaderCache, src: FillSource, t: CanonicalTensor, buf: GPUBuffer, firstWord: number, words: number): void {
  const f = src.fill(t.name);
  const kind = f.kind === 'codes' ? 1 : f.kind === 'scales' ? 2 : isVector(t.name) ? 3 : 0;
  const params = packParams(KERNEL_PARAMS.fill_random, {
    words: Math.ceil(words),
    seed: f.seed,
    kind,
    lo: f.kind === 'scales' ? f.lo : 0,
    span: f.kind === 'scales' ? f.span : 1,
    mean: f.kind === 'normal' ? f.mean : 0,
    sigma: f.kind === 'normal' ? f.std : 0,
    first: firstWord,
  });
  const pipeline = shaders.pipeline({ shader: 'fill_random' });
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup(gpu, pipeline, [uniformBuffer(gpu, params, `${t.name}.fill`), buf]));
  const g = grid(Math.ceil(Math.ceil(words) / 256));
  pass.dispatchWorkgroups(g[0], g[1], g[2]);
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
}
