// The gpt-oss forward pass as a recorded list of dispatches, built once at load. One list serves
// every step, whatever mix of prefill chunks and decode tokens of different sequences it holds:
// it holds every variant of every kernel, each carrying its dispatch-policy.ts predicate, so a
// step runs the variants its shape picks; grids are functions of the step's counts, per-token
// positions and sequence slots come from the step inputs, and attention follows the per-step
// plan. Reads like gpt_oss/torch/model.py: embedding, then per block attention and MoE, then
// norm, unembedding and the sampler.
import type { Dispatch, StepShape } from '../gpu/buffers.js';
import { encodeDispatches, storageBuffer } from '../gpu/buffers.js';
import type { ModelConfig } from '../model/config.js';
import type { OpContext, StepInputs } from './ops/context.js';
import { embedOps, rmsnormOp } from './ops/basic.js';
import { denseOps } from './ops/dense.js';
import { allocateMoeSmallM, moeSmallMGroupBytes, moeSmallMOps, type MoeSmallMBuffers } from './ops/moe-smallm.js';
import { attentionOps, ropeKvWriteOp, type AttentionPlan, type AttentionScratch, type KvLayout } from './ops/attention.js';
import { allocateMoeGroup, moeDownOp, moeGroupBytes, moeGroupedOps, moeUpOp, topkOp, type MoeGroupBuffers } from './ops/moe.js';
import { qkvRopeOp, routerNormOp, unembedOps } from './ops/fused.js';
import { fusedQkv, headFused, headTiled, MOE_ROUTED_MIN_TOKENS, MOE_SMALLM_MAX_TOKENS, moeGrouped, moeMatvec, moeRouted, moeSmallM, unfusedQkv, type When } from './dispatch-policy.js';
import { sampleOps } from './ops/sample.js';
import { logitsProcessOps } from './ops/logits-process.js';
import type { ExpertShard, LayerWeights, ModelWeights } from './weights.js';

/** A copy between buffers, recorded outside compute passes (debug captures only). */
export interface Copy {
  copy: { src: GPUBuffer; dst: GPUBuffer; bytes: (s: StepShape) => number };
}

export type ProgramItem = Dispatch | Copy;

export interface Activations {
  x: GPUBuffer; // f32 [T][H] residual stream
  xn: GPUBuffer; // f32 [T][H] normalised
  qkv: GPUBuffer; // f32 [T][(nq + 2 nkv) d]
  attn: GPUBuffer; // f32 [T][nq d]
  routerLogits: GPUBuffer; // f32 [T][E]
  routing: GPUBuffer[]; // per layer u32 [T][k][2]: (expert, weight bits)
  h: GPUBuffer; // f32 [T][k][I] (matvec MoE) or [T·k][I] at expert-sorted rows (grouped MoE)
  moe: MoeGroupBuffers; // the grouped GEMM MoE's routing metadata and expert outputs
  moeSmall: MoeSmallMBuffers; // the same for the grouped matvec MoE (steps up to MOE_SMALLM_MAX_TOKENS)
  xf: GPUBuffer; // f32 [R][H] final-normed rows that need logits
  logits: GPUBuffer; // f32 [R][V]
}

/** Sizes the activation buffers are planned for. */
export interface ForwardShape {
  config: ModelConfig;
  /** Tokens a step holds. */
  tokens: number;
  /** Logits rows a step holds. */
  rows: number;
}

export function activationBytes(s: ForwardShape): number {
  const c = s.config;
  const T = s.tokens;
  const qkvW = (c.numHeads + 2 * c.numKvHeads) * c.headDim;
  return (
    4 *
    (2 * T * c.hiddenSize +
      T * qkvW +
      T * c.numHeads * c.headDim +
      T * c.numExperts +
      c.numLayers * T * c.expertsPerToken * 2 +
      T * c.expertsPerToken * c.intermediateSize +
      s.rows * (c.hiddenSize + c.vocabSize)) +
    moeGroupBytes(T, c) +
    moeSmallMGroupBytes(smallMTokens(T), c)
  );
}

/** Most tokens a step sends through the grouped matvec MoE. */
function smallMTokens(tokens: number): number {
  return Math.max(MOE_ROUTED_MIN_TOKENS, Math.min(tokens, MOE_SMALLM_MAX_TOKENS));
}

export function allocateActivations(ctx: OpContext, s: ForwardShape): Activations {
  const c = s.config;
  const T = s.tokens;
  const f32 = (n: number, label: string) => storageBuffer(ctx.gpu, n * 4, label);
  return {
    x: f32(T * c.hiddenSize, 'x'),
    xn: f32(T * c.hiddenSize, 'xn'),
    qkv: f32(T * (c.numHeads + 2 * c.numKvHeads) * c.headDim, 'qkv'),
    attn: f32(T * c.numHeads * c.headDim, 'attn'),
    routerLogits: f32(T * c.numExperts, 'router_logits'),
    routing: c.layerTypes.map((_, i) => f32(T * c.expertsPerToken * 2, `routing.${i}`)),
    h: f32(T * c.expertsPerToken * c.intermediateSize, 'h'),
    moe: allocateMoeGroup(ctx.gpu, T, c),
    moeSmall: allocateMoeSmallM(ctx.gpu, smallMTokens(T), c),
    xf: f32(s.rows * c.hiddenSize, 'xf'),
    logits: f32(s.rows * c.vocabSize, 'logits'),
  };
}

/** One layer's slice of the paged KV cache: its group's page table and its K and V pools. */
export interface LayerKv {
  table: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  /** The attention plan of the layer's type (sliding or full). */
  plan: AttentionPlan;
}

/** The forward: every variant of every kernel, each run when its predicate holds (Dispatch.when). */
export type Program = ProgramItem[];

export interface Capture {
  /** Per layer: x after attention, x after the MoE block, router logits; f32 [T][...] */
  attnOut: GPUBuffer[];
  mlpOut: GPUBuffer[];
  routerLogits: GPUBuffer[];
}

/** What every block of the program reads besides its own weights. */
interface ForwardState {
  ctx: OpContext;
  c: ModelConfig;
  a: Activations;
  inputs: StepInputs;
  rope: GPUBuffer;
  kvLayout: KvLayout;
  scratch: AttentionScratch;
  capture?: Capture;
}

const rowBytes = (n: number) => (sh: StepShape) => sh.tokens * n * 4;

/** The dispatches, run only where `when` holds too (a variant of the block). */
function only(when: When, items: Dispatch[]): Dispatch[] {
  return items.map((d) => ({ ...d, when: d.when ? (s: StepShape) => when(s) && d.when!(s) : when }));
}

/**
 * x += attention(norm(x)): QKV, RoPE and KV write (fused into one matvec for few tokens), attention
 * over the cache, out projection.
 */
function attentionBlock(f: ForwardState, l: LayerWeights, kv: LayerKv, i: number): ProgramItem[] {
  const { ctx, c, a } = f;
  const H = c.hiddenSize;
  const name = `layers.${i}`;
  const qkvRows = (c.numHeads + 2 * c.numKvHeads) * c.headDim;
  const cache = { table: kv.table, kpool: kv.k, vpool: kv.v };
  const items: ProgramItem[] = [
    ...only(fusedQkv, [
      qkvRopeOp(ctx, { toks: f.inputs.toks, x: a.x, normScale: l.attnNorm, w: l.qkvWeight, bias: l.qkvBias, rope: f.rope, ...cache, qkv: a.qkv, cfg: c, kv: f.kvLayout, label: `${name}.qkv` }),
    ]),
    ...only(unfusedQkv, [
      rmsnormOp(ctx, { x: a.x, scale: l.attnNorm, y: a.xn, hidden: H, eps: c.rmsNormEps, label: `${name}.attn_norm` }),
      ...denseOps(ctx, { x: a.xn, w: l.qkvWeight, bias: l.qkvBias, y: a.qkv, k: H, n: qkvRows, label: `${name}.qkv` }),
      ropeKvWriteOp(ctx, { toks: f.inputs.toks, qkv: a.qkv, rope: f.rope, ...cache, cfg: c, kv: f.kvLayout, label: `${name}.rope` }),
    ]),
    ...attentionOps(ctx, { plan: kv.plan, qkv: a.qkv, ...cache, sinks: l.sinks, attn: a.attn, scratch: f.scratch, kv: f.kvLayout, label: `${name}.attn` }),
    ...denseOps(ctx, { x: a.attn, w: l.outWeight, bias: l.outBias, y: a.x, k: c.numHeads * c.headDim, n: H, accumulate: true, label: `${name}.attn_out` }),
  ];
  if (f.capture) items.push({ copy: { src: a.x, dst: f.capture.attnOut[i]!, bytes: rowBytes(H) } });
  return items;
}

/** x += MoE(norm(x)): router, top-k + softmax, the chosen experts' SwiGLU MLPs, weighted sum. */
function moeBlock(f: ForwardState, l: LayerWeights, i: number): ProgramItem[] {
  const { ctx, c, a } = f;
  const H = c.hiddenSize;
  const name = `layers.${i}`;
  const experts = { hidden: H, intermediate: c.intermediateSize, topK: c.expertsPerToken, numExperts: c.numExperts };
  const routing = a.routing[i]!;
  const shard = (e: ExpertShard) => (l.experts.length > 1 ? `.${e.first}` : '');
  const items: ProgramItem[] = [
    ...only(moeMatvec, [
      routerNormOp(ctx, { x: a.x, normScale: l.mlpNorm, w: l.routerWeight, bias: l.routerBias, logits: a.routerLogits, xn: a.xn, cfg: c, label: `${name}.router` }),
      // per (token, slot): mlp1 picks the experts from the router logits, then each expert shard
      // computes its slots' SwiGLU outputs; mlp2 adds each shard's slots to x
      ...l.experts.map((e) =>
        moeUpOp(ctx, {
          ...experts,
          xn: a.xn,
          routing,
          topkLogits: a.routerLogits,
          blocks: e.mlp1Blocks,
          scales: e.mlp1Scales,
          bias: e.mlp1Bias,
          firstExpert: e.first,
          expertCount: e.count,
          h: a.h,
          swigluLimit: c.swigluLimit,
          label: `${name}.mlp1${shard(e)}`,
        }),
      ),
      ...l.experts.map((e) =>
        moeDownOp(ctx, { ...experts, h: a.h, routing, blocks: e.mlp2Blocks, scales: e.mlp2Scales, bias: e.mlp2Bias, firstExpert: e.first, expertCount: e.count, x: a.x, label: `${name}.mlp2${shard(e)}` }),
      ),
    ]),
    ...only(moeRouted, [
      rmsnormOp(ctx, { x: a.x, scale: l.mlpNorm, y: a.xn, hidden: H, eps: c.rmsNormEps, label: `${name}.mlp_norm` }),
      // the dense rule like any product: from 32 tokens one tile of 64 or 128 rows reads the
      // router once (E columns of a 64-wide tile: padding arithmetic, but E x H is small)
      ...denseOps(ctx, { x: a.xn, w: l.routerWeight, bias: l.routerBias, y: a.routerLogits, k: H, n: c.numExperts, label: `${name}.router` }),
      topkOp(ctx, { logits: a.routerLogits, routing, numExperts: c.numExperts, topK: c.expertsPerToken, label: `${name}.topk` }),
    ]),
    // the (token, slot) pairs grouped by expert: each used expert's weights read once per pass of
    // its rows (few tokens) or per GEMM tile of them (many)
    ...only(moeSmallM, moeSmallMOps(ctx, { ...experts, xn: a.xn, routing, h: a.h, x: a.x, group: a.moeSmall, experts: l.experts, swigluLimit: c.swigluLimit, label: name })),
    ...only(moeGrouped, moeGroupedOps(ctx, { ...experts, xn: a.xn, routing, h: a.h, x: a.x, group: a.moe, experts: l.experts, swigluLimit: c.swigluLimit, label: name })),
  ];
  if (f.capture) {
    items.push({ copy: { src: a.routerLogits, dst: f.capture.routerLogits[i]!, bytes: rowBytes(c.numExperts) } });
    items.push({ copy: { src: a.x, dst: f.capture.mlpOut[i]!, bytes: rowBytes(H) } });
  }
  return items;
}

/**
 * Logits of the step's rows and the sampled ids: final norm folded into the unembedding (which
 * also picks the greedy argmax, or the Gumbel-max draw of a temperature-only row, where the
 * adapter has 64-bit atomics), or for many rows (every
 * prompt row's logits) a norm dispatch and the tiled unembedding; then the sampler.
 */
function head(f: ForwardState, w: ModelWeights): Dispatch[] {
  const { ctx, c, a } = f;
  const H = c.hiddenSize;
  const argmax = ctx.gpu.features.atomicVec2uMinMax ? f.inputs.argmax : undefined;
  const picks = argmax ? { picks: argmax, samples: f.inputs.sampling } : undefined;
  const proc = logitsProcessOps(ctx, { logits: a.logits, inputs: f.inputs, vocab: c.vocabSize });
  return [
    ...only(headFused, unembedOps(ctx, { rows: f.inputs.rows, x: a.x, normScale: w.norm, shards: w.unembedding, logits: a.logits, argmax: picks, cfg: c, label: 'unembedding' })),
    ...only(headTiled, [
      rmsnormOp(ctx, { x: a.x, scale: w.norm, y: a.xf, hidden: H, eps: c.rmsNormEps, rows: f.inputs.rows, label: 'norm' }),
      ...w.unembedding.flatMap((sh, i) =>
        denseOps(ctx, { x: a.xf, w: sh.buffer, y: a.logits, k: H, n: sh.count, n0: sh.first, ny: c.vocabSize, outRows: true, label: w.unembedding.length > 1 ? `unembedding.${i}` : 'unembedding' }),
      ),
    ]),
    // rows with logprobs, a logit bias, penalties or min-p (the host lists them)
    proc.before,
    ...only(headFused, sampleOps(ctx, { logits: a.logits, inputs: f.inputs, vocab: c.vocabSize, argmax })),
    ...only(headTiled, sampleOps(ctx, { logits: a.logits, inputs: f.inputs, vocab: c.vocabSize })),
    proc.after,
  ];
}

export interface ProgramArgs {
  ctx: OpContext;
  config: ModelConfig;
  weights: ModelWeights;
  act: Activations;
  inputs: StepInputs;
  kv: LayerKv[];
  kvLayout: KvLayout;
  scratch: AttentionScratch;
  rope: GPUBuffer;
  capture?: Capture;
}

export function buildProgram(p: ProgramArgs): Program {
  const c = p.config;
  const a = p.act;
  const f: ForwardState = { ctx: p.ctx, c, a, inputs: p.inputs, rope: p.rope, kvLayout: p.kvLayout, scratch: p.scratch, capture: p.capture };
  return [
    ...embedOps(p.ctx, { toks: p.inputs.toks, lastIds: p.inputs.lastIds, table: p.weights.embedding, x: a.x, hidden: c.hiddenSize, argmax: p.inputs.argmax }),
    ...p.weights.layers.flatMap((l, i) => [...attentionBlock(f, l, p.kv[i]!, i), ...moeBlock(f, l, i)]),
    ...head(f, p.weights),
  ];
}

/**
 * Encodes program items into `enc`: each run of consecutive dispatches is one compute pass; copies
 * (debug captures) sit between passes. Returns the number of dispatches encoded.
 */
export function encodeProgram(enc: GPUCommandEncoder, items: readonly ProgramItem[], shape: StepShape): number {
  let dispatches = 0;
  let run: Dispatch[] = [];
  const flush = () => {
    if (!run.length) return;
    const pass = enc.beginComputePass();
    dispatches += encodeDispatches(pass, run, shape);
    pass.end();
    run = [];
  };
  for (const it of items) {
    if ('copy' in it) {
      flush();
      const cp = it.copy;
      enc.copyBufferToBuffer(cp.src, 0, cp.dst, 0, cp.bytes(shape));
    } else {
      run.push(it);
    }
  }
  flush();
  return dispatches;
}
