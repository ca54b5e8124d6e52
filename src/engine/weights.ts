// Uploads a checkpoint's canonical tensors to GPU buffers. Matrices and MXFP4 experts keep their
// checkpoint bytes (bf16 pairs, 4-bit blocks + u8 scales); small vectors (norms, biases, sinks)
// are widened to f32. Big tensors stream from disk in bounded chunks, so peak host memory is a
// constant plus one chunk, never the whole checkpoint.
import type { Gpu } from '../gpu/device.js';
import { bindGroup, grid, storageBuffer, uniformBuffer, writeBuffer, Params } from '../gpu/buffers.js';
import type { ShaderCache } from '../gpu/shaders.js';
import type { TensorStats } from '../model/synthetic.js';
import type { CanonicalTensor, Checkpoint } from '../model/checkpoint.js';
import type { ModelConfig } from '../model/config.js';

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
  mlp1Blocks: GPUBuffer;
  mlp1Scales: GPUBuffer;
  mlp1Bias: GPUBuffer;
  mlp2Blocks: GPUBuffer;
  mlp2Scales: GPUBuffer;
  mlp2Bias: GPUBuffer;
}

export interface ModelWeights {
  embedding: GPUBuffer;
  layers: LayerWeights[];
  norm: GPUBuffer;
  unembedding: GPUBuffer;
  bytes: number;
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
}

export type TensorSource = StreamSource | FillSource;

export interface UploadProgress {
  (done: number, total: number, tensor: string): void;
}

export async function uploadWeights(
  gpu: Gpu,
  shaders: ShaderCache,
  src: TensorSource,
  onProgress?: UploadProgress,
): Promise<ModelWeights> {
  const cfg: ModelConfig = src.config;
  const maxBinding = gpu.device.limits.maxStorageBufferBindingSize;
  const names = [
    'embedding',
    ...Array.from({ length: cfg.numLayers }, (_, i) =>
      [
        'attn_norm', 'qkv.weight', 'qkv.bias', 'sinks', 'attn_out.weight', 'attn_out.bias', 'mlp_norm',
        'router.weight', 'router.bias', 'mlp1.blocks', 'mlp1.scales', 'mlp1.bias', 'mlp2.blocks', 'mlp2.scales',
        'mlp2.bias',
      ].map((n) => `layers.${i}.${n}`),
    ).flat(),
    'norm',
    'unembedding',
  ];
  const tensors = names.map((n) => src.tensor(n));
  const total = tensors.reduce((a, t) => a + gpuBytes(t), 0);
  let done = 0;
  let sinceFlush = 0;
  const buffers = new Map<string, GPUBuffer>();
  for (const t of tensors) {
    const size = gpuBytes(t);
    if (size > maxBinding) {
      throw new Error(
        `tensor "${t.name}" needs ${size} bytes on the GPU, over this adapter's maxStorageBufferBindingSize ${maxBinding}`,
      );
    }
    const buf = storageBuffer(gpu, size, t.name);
    if ('fill' in src) fillTensor(gpu, shaders, src, t, buf);
    else await uploadTensor(gpu, src, t, buf);
    buffers.set(t.name, buf);
    done += size;
    sinceFlush += size;
    // Bound Dawn's staging memory: let the queue drain every few hundred MB.
    if (sinceFlush > 256 << 20) {
      await gpu.device.queue.onSubmittedWorkDone();
      sinceFlush = 0;
    }
    onProgress?.(done, total, t.name);
  }
  await gpu.device.queue.onSubmittedWorkDone();
  const get = (n: string) => buffers.get(n)!;
  return {
    embedding: get('embedding'),
    norm: get('norm'),
    unembedding: get('unembedding'),
    layers: Array.from({ length: cfg.numLayers }, (_, i) => {
      const l = (n: string) => get(`layers.${i}.${n}`);
      return {
        attnNorm: l('attn_norm'),
        qkvWeight: l('qkv.weight'),
        qkvBias: l('qkv.bias'),
        sinks: l('sinks'),
        outWeight: l('attn_out.weight'),
        outBias: l('attn_out.bias'),
        mlpNorm: l('mlp_norm'),
        routerWeight: l('router.weight'),
        routerBias: l('router.bias'),
        mlp1Blocks: l('mlp1.blocks'),
        mlp1Scales: l('mlp1.scales'),
        mlp1Bias: l('mlp1.bias'),
        mlp2Blocks: l('mlp2.blocks'),
        mlp2Scales: l('mlp2.scales'),
        mlp2Bias: l('mlp2.bias'),
      };
    }),
    bytes: total,
  };
}

async function uploadTensor(gpu: Gpu, src: StreamSource, t: CanonicalTensor, buf: GPUBuffer): Promise<void> {
  if (isVector(t.name)) {
    writeBuffer(gpu, buf, 0, await src.readF32(t));
    return;
  }
  let offset = 0;
  for await (const chunk of src.readChunks(t, 64 << 20)) {
    writeBuffer(gpu, buf, offset, chunk);
    offset += chunk.byteLength;
  }
  if (offset !== t.byteLength) {
    throw new Error(`tensor "${t.name}": read ${offset} bytes, expected ${t.byteLength}`);
  }
}

function fillTensor(gpu: Gpu, shaders: ShaderCache, src: FillSource, t: CanonicalTensor, buf: GPUBuffer): void {
  const f = src.fill(t.name);
  const words = Math.ceil(gpuBytes(t) / 4);
  const kind = f.kind === 'codes' ? 1 : f.kind === 'scales' ? 2 : isVector(t.name) ? 3 : 0;
  const params = new Params()
    .u32(words)
    .u32(f.seed)
    .u32(kind)
    .u32(f.kind === 'scales' ? f.lo : 0)
    .u32(f.kind === 'scales' ? f.span : 1)
    .f32(f.kind === 'normal' ? f.mean : 0)
    .f32(f.kind === 'normal' ? f.std : 0);
  const pipeline = shaders.pipeline({ shader: 'fill_random' });
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup(gpu, pipeline, [uniformBuffer(gpu, params, `${t.name}.fill`), buf]));
  const g = grid(Math.ceil(words / 256));
  pass.dispatchWorkgroups(g[0], g[1], g[2]);
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
}
