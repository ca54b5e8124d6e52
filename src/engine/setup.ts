// Setting an engine up, in two steps: planEngine() is pure (defaults, the memory plan, the KV
// plan, the scheduler's options: what `serve --plan` and the GPU memory budget read), and
// allocateEngine() makes every GPU object the plan calls for, through one OpContext whose registry
// frees them all (EngineResources.destroy).
import type { Gpu } from '../gpu/device.js';
import { ShaderCache, subgroupLayoutHolds } from '../gpu/shaders.js';
import { uploadBuffer } from '../gpu/buffers.js';
import { expectedTensors } from '../model/checkpoint.js';
import type { ModelConfig } from '../model/config.js';
import type { EngineOptions, MemoryPlan } from './api.js';
import { OpContext, StepInputs } from './ops/context.js';
import { sgmatAtLoad, type SgmatChoice } from './sgmat-check.js';
import { AttentionPlan, attentionScratch, checkAttentionShape, type AttentionScratch, type KvLayout } from './ops/attention.js';
import { activationBytes, allocateActivations, buildProgram, type Activations, type LayerKv, type Program } from './forward.js';
import { allocateKv, planKv, type KvBuffers, type KvPlan } from './kv-cache.js';
import { ropeTable } from './rope.js';
import type { SchedulerOptions } from './scheduler.js';
import { checkSpecTokens } from './speculative/speculator.js';
import { gpuBytes, uploadWeights, type ModelWeights, type TensorSource } from './weights.js';

/** Everything the options and the adapter's binding limit decide before any allocation. */
export interface EnginePlan {
  config: ModelConfig;
  memoryPlan: MemoryPlan;
  kvPlan: KvPlan;
  kvLayout: KvLayout;
  scheduler: SchedulerOptions;
  /** Logits rows a step holds: every token's with allLogits, else its sampled rows. */
  rows: number;
  /** Sampled rows a step holds: one per sequence, and with speculative decoding its proposals' (as far as the logits binding allows). */
  samples: number;
  allLogits: boolean;
  runAhead: boolean;
}

/** Logits rows a step gives to prompt logprobs (its prompt chunks are that long at most). */
export const PROMPT_LOGPROB_ROWS = 32;

export function planEngine(config: ModelConfig, opts: EngineOptions, maxBinding: number): EnginePlan {
  const context = Math.min(opts.context ?? config.maxPositionEmbeddings, config.maxPositionEmbeddings);
  if (!(context >= 1)) throw new Error(`context must be at least 1 (got ${opts.context})`);
  const maxNumSeqs = opts.maxNumSeqs ?? 1;
  const maxBatchTokens = Math.max(maxNumSeqs, Math.min(opts.maxBatchTokens ?? 512, Math.max(context, maxNumSeqs)));
  const pageSize = opts.pageSize ?? 32;
  checkAttentionShape(config, { pageSize });
  // a verifying sequence samples its k proposals' positions too; the logits rows stay in one binding
  if (opts.speculative) checkSpecTokens(opts.speculative.tokens);
  const K = opts.speculative?.tokens ?? 0;
  const bindingRows = Math.floor(maxBinding / (config.vocabSize * 4));
  const samples = Math.max(maxNumSeqs, Math.min(maxNumSeqs * (1 + K), maxBatchTokens, bindingRows));
  // and some rows for prompt positions whose next token's logprob is asked for (echo + logprobs)
  const baseRows = opts.allLogits ? Math.max(maxBatchTokens, samples) : samples;
  const promptRows = Math.max(0, Math.min(PROMPT_LOGPROB_ROWS, maxBatchTokens, bindingRows - baseRows));
  const rows = baseRows + promptRows;
  const kvPlan = planKv(config, { context, seqs: maxNumSeqs, batchTokens: maxBatchTokens, pageSize, dtype: opts.kvDtype ?? 'f16', memory: opts.kvMemory, maxBinding });
  const weights = expectedTensors(config).reduce((n, t) => n + gpuBytes({ ...t, byteLength: tensorBytes(t) }), 0);
  const activations = activationBytes({ config, tokens: maxBatchTokens, rows });
  const rope = context * config.headDim * 4;
  return {
    config,
    memoryPlan: {
      weights,
      kv: kvPlan.bytes,
      rope,
      activations,
      total: weights + kvPlan.bytes + rope + activations,
      context,
      chunk: maxBatchTokens,
      maxNumSeqs,
      kvPages: { pageSize, dtype: kvPlan.dtype, full: kvPlan.fullPages, sliding: kvPlan.slidingPages, positions: kvPlan.positions },
    },
    kvPlan,
    kvLayout: { pageSize, f32: kvPlan.dtype === 'f32', maxBlocks: kvPlan.maxBlocks },
    scheduler: {
      maxNumSeqs,
      maxBatchTokens,
      pageSize,
      context,
      fullPages: kvPlan.fullPages,
      slidingPages: kvPlan.slidingPages,
      window: config.slidingWindow,
      prefixCaching: opts.prefixCaching ?? true,
      maxRows: samples,
      promptRows,
    },
    rows,
    samples,
    allLogits: !!opts.allLogits,
    runAhead: opts.runAhead ?? true,
  };
}

/** The GPU objects of a loaded engine. */
export interface EngineResources {
  /** The device itself (transient buffers); allocate through ctx.gpu to have them freed. */
  gpu: Gpu;
  ownsGpu: boolean;
  shaders: ShaderCache;
  ctx: OpContext;
  kvLayout: KvLayout;
  weights: ModelWeights;
  act: Activations;
  inputs: StepInputs;
  kv: KvBuffers;
  /** The per-step attention work of each layer group (null: the model has no layer of it). */
  attnPlans: { sliding: AttentionPlan | null; full: AttentionPlan | null };
  layerKv: LayerKv[];
  scratch: AttentionScratch;
  rope: GPUBuffer;
  program: Program;
  /** Whether the subgroup-matrix GEMMs replaced the f32 tiled ones, and why (sgmat-check.ts). */
  subgroupMatrix: SgmatChoice;
}

export async function allocateEngine(gpu: Gpu, ownsGpu: boolean, src: TensorSource, plan: EnginePlan, opts: EngineOptions): Promise<EngineResources> {
  const { config, kvPlan, kvLayout } = plan;
  const { maxNumSeqs, maxBatchTokens, context } = { ...plan.scheduler };
  const shaders = new ShaderCache(gpu, await subgroupLayoutHolds(gpu));
  const ctx = new OpContext(gpu, shaders);
  try {
    const g = ctx.gpu;
    const weights = await uploadWeights(g, shaders, src, { shardBytes: opts.shardBytes, onProgress: opts.onProgress });
    // before buildProgram: the op factories read the choice
    const subgroupMatrix = await sgmatAtLoad(gpu, shaders, weights.mxfp4Scales);
    const act = allocateActivations(ctx, { config, tokens: maxBatchTokens, rows: plan.rows });
    const inputs = new StepInputs(g, { tokens: maxBatchTokens, rows: plan.rows, samples: plan.samples, seqs: maxNumSeqs, vocab: config.vocabSize });
    const kv = allocateKv(g, config, kvPlan, maxNumSeqs);
    const limits = { seqs: maxNumSeqs, tokens: maxBatchTokens };
    const attnPlans = {
      sliding: kvPlan.slidingPages ? new AttentionPlan(g, 'attn.sliding', config, true, kvLayout, limits) : null,
      full: kvPlan.fullPages ? new AttentionPlan(g, 'attn.full', config, false, kvLayout, limits) : null,
    };
    const partials = Math.max(attnPlans.sliding?.partialCap ?? 0, attnPlans.full?.partialCap ?? 0);
    const scratch = attentionScratch(g, config, partials);
    const layerKv: LayerKv[] = config.layerTypes.map((t, i) => ({
      table: (t === 'full' ? kv.fullTable : kv.slidingTable)!,
      k: kv.layers[i]!.k,
      v: kv.layers[i]!.v,
      plan: (t === 'full' ? attnPlans.full : attnPlans.sliding)!,
    }));
    const rope = uploadBuffer(g, ropeTable(config, context), 'rope');
    const program = buildProgram({ ctx, config, weights, act, inputs, kv: layerKv, kvLayout, scratch, rope });
    await shaders.validate();
    return { gpu, ownsGpu, shaders, ctx, kvLayout, weights, act, inputs, kv, attnPlans, layerKv, scratch, rope, program, subgroupMatrix };
  } catch (e) {
    ctx.destroy();
    throw e;
  }
}

/** Frees every buffer of the engine (the device too, when the engine created it). */
export function destroyResources(r: EngineResources): void {
  r.ctx.destroy();
  if (r.ownsGpu) r.gpu.device.destroy();
}

function tensorBytes(t: { shape: number[]; dtypes: readonly string[] }): number {
  const n = t.shape.reduce((a, b) => a * b, 1);
  return t.dtypes.includes('U8') ? n : n * 2;
}
