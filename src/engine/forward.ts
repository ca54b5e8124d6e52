// The gpt-oss forward pass as a recorded list of dispatches, built once at load. The same list
// serves a prefill chunk (T tokens) and a decode step (T = 1): grids are functions of the step's
// shape, per-step values live in the Step buffer. Reads like gpt_oss/torch/model.py: embedding,
// then per block attention and MoE, then norm, unembedding and the sampler.
import type { Dispatch, StepShape } from '../gpu/buffers.js';
import { encodeDispatches, storageBuffer } from '../gpu/buffers.js';
import type { ModelConfig } from '../model/config.js';
import type { OpContext } from './ops/context.js';
import { embedOp, matmulOp, rmsnormOp } from './ops/basic.js';
import { attentionOps, kvCapacity, ropeKvWriteOp } from './ops/attention.js';
import { moeDownOp, moeUpOp, topkOp } from './ops/moe.js';
import { sampleOp } from './ops/sample.js';
import type { ModelWeights } from './weights.js';

/** A copy between buffers, recorded outside compute passes (debug captures only). */
export interface Copy {
  copy: { src: GPUBuffer; dst: GPUBuffer; bytes: (s: StepShape) => number; dstOffset?: (s: StepShape) => number };
}

export type ProgramItem = Dispatch | Copy;

export interface Activations {
  tokens: GPUBuffer; // u32 [C]: the chunk's ids; decoding reads the sampled id from tokens[0]
  x: GPUBuffer; // f32 [C][H] residual stream
  xn: GPUBuffer; // f32 [C][H] normalised
  qkv: GPUBuffer; // f32 [C][(nq + 2 nkv) d]
  attn: GPUBuffer; // f32 [C][nq d]
  routerLogits: GPUBuffer; // f32 [C][E]
  routing: GPUBuffer[]; // per layer u32 [C][k][2]: (expert, weight bits)
  h: GPUBuffer; // f32 [C][k][I]
  xf: GPUBuffer; // f32 [R][H] final-normed rows that need logits
  logits: GPUBuffer; // f32 [R][V]
}

export interface KvCache {
  k: GPUBuffer;
  v: GPUBuffer;
  cap: number;
  sliding: boolean;
}

export interface ForwardShape {
  config: ModelConfig;
  /** Largest prefill chunk. */
  chunk: number;
  /** Rows of logits the engine can hold: 1, or `chunk` when every prompt row's logits are wanted. */
  logitRows: number;
  /** Positions the KV cache holds. */
  context: number;
}

/** Bytes of every activation and KV buffer, for the memory plan. */
export function activationBytes(s: ForwardShape): { activations: number; kv: number; rope: number } {
  const c = s.config;
  const C = s.chunk;
  const qkvW = (c.numHeads + 2 * c.numKvHeads) * c.headDim;
  const activations =
    4 *
    (C +
      2 * C * c.hiddenSize +
      C * qkvW +
      C * c.numHeads * c.headDim +
      C * c.numExperts +
      c.numLayers * C * c.expertsPerToken * 2 +
      C * c.expertsPerToken * c.intermediateSize +
      s.logitRows * (c.hiddenSize + c.vocabSize));
  let kv = 0;
  for (const t of c.layerTypes) {
    kv += 2 * 4 * c.numKvHeads * c.headDim * kvCapacity(c, t === 'sliding', s.context, C);
  }
  const rope = s.context * c.headDim * 4;
  return { activations, kv, rope };
}

export function allocateActivations(ctx: OpContext, s: ForwardShape): Activations {
  const c = s.config;
  const C = s.chunk;
  const g = ctx.gpu;
  const f32 = (n: number, label: string) => storageBuffer(g, n * 4, label);
  return {
    tokens: f32(C, 'tokens'),
    x: f32(C * c.hiddenSize, 'x'),
    xn: f32(C * c.hiddenSize, 'xn'),
    qkv: f32(C * (c.numHeads + 2 * c.numKvHeads) * c.headDim, 'qkv'),
    attn: f32(C * c.numHeads * c.headDim, 'attn'),
    routerLogits: f32(C * c.numExperts, 'router_logits'),
    routing: c.layerTypes.map((_, i) => f32(C * c.expertsPerToken * 2, `routing.${i}`)),
    h: f32(C * c.expertsPerToken * c.intermediateSize, 'h'),
    xf: f32(s.logitRows * c.hiddenSize, 'xf'),
    logits: f32(s.logitRows * c.vocabSize, 'logits'),
  };
}

export function allocateKv(ctx: OpContext, s: ForwardShape): KvCache[] {
  const c = s.config;
  return c.layerTypes.map((t, i) => {
    const sliding = t === 'sliding';
    const cap = kvCapacity(c, sliding, s.context, s.chunk);
    const bytes = c.numKvHeads * cap * c.headDim * 4;
    return {
      k: storageBuffer(ctx.gpu, bytes, `kcache.${i}`),
      v: storageBuffer(ctx.gpu, bytes, `vcache.${i}`),
      cap,
      sliding,
    };
  });
}

export interface Program {
  /** Everything up to the last block's output (x holds the residual stream of every chunk row). */
  blocks: ProgramItem[];
  /** Final norm + unembedding of the step's logits rows. */
  head: Dispatch[];
  sample: Dispatch;
}

export interface Capture {
  /** Per layer: x after attention, x after the MoE block, router logits; f32 [C][...] */
  attnOut: GPUBuffer[];
  mlpOut: GPUBuffer[];
  routerLogits: GPUBuffer[];
}

export function buildProgram(
  ctx: OpContext,
  s: ForwardShape,
  w: ModelWeights,
  a: Activations,
  kv: KvCache[],
  rope: GPUBuffer,
  capture?: Capture,
): Program {
  const c = s.config;
  const H = c.hiddenSize;
  const qkvRows = (c.numHeads + 2 * c.numKvHeads) * c.headDim;
  const blocks: ProgramItem[] = [embedOp(ctx, { tokens: a.tokens, table: w.embedding, x: a.x, hidden: H })];
  const rowBytes = (n: number) => (sh: StepShape) => sh.tokens * n * 4;

  w.layers.forEach((l, i) => {
    const name = `layers.${i}`;
    // attention block
    blocks.push(
      rmsnormOp(ctx, { x: a.x, scale: l.attnNorm, y: a.xn, hidden: H, eps: c.rmsNormEps, label: `${name}.attn_norm` }),
      matmulOp(ctx, { x: a.xn, w: l.qkvWeight, bias: l.qkvBias, y: a.qkv, k: H, n: qkvRows, label: `${name}.qkv` }),
      ropeKvWriteOp(ctx, { qkv: a.qkv, rope, kcache: kv[i]!.k, vcache: kv[i]!.v, cfg: c, cap: kv[i]!.cap, label: `${name}.rope` }),
      ...attentionOps(ctx, {
        qkv: a.qkv,
        kcache: kv[i]!.k,
        vcache: kv[i]!.v,
        sinks: l.sinks,
        attn: a.attn,
        cfg: c,
        sliding: kv[i]!.sliding,
        cap: kv[i]!.cap,
        maxChunk: s.chunk,
        label: `${name}.attn`,
      }),
      matmulOp(ctx, {
        x: a.attn,
        w: l.outWeight,
        bias: l.outBias,
        y: a.x,
        k: c.numHeads * c.headDim,
        n: H,
        accumulate: true,
        label: `${name}.attn_out`,
      }),
    );
    if (capture) blocks.push({ copy: { src: a.x, dst: capture.attnOut[i]!, bytes: rowBytes(H) } });
    // MoE block
    blocks.push(
      rmsnormOp(ctx, { x: a.x, scale: l.mlpNorm, y: a.xn, hidden: H, eps: c.rmsNormEps, label: `${name}.mlp_norm` }),
      matmulOp(ctx, {
        x: a.xn,
        w: l.routerWeight,
        bias: l.routerBias,
        y: a.routerLogits,
        k: H,
        n: c.numExperts,
        label: `${name}.router`,
      }),
      topkOp(ctx, {
        logits: a.routerLogits,
        routing: a.routing[i]!,
        numExperts: c.numExperts,
        topK: c.expertsPerToken,
        label: `${name}.topk`,
      }),
      moeUpOp(ctx, {
        xn: a.xn,
        routing: a.routing[i]!,
        blocks: l.mlp1Blocks,
        scales: l.mlp1Scales,
        bias: l.mlp1Bias,
        h: a.h,
        hidden: H,
        intermediate: c.intermediateSize,
        topK: c.expertsPerToken,
        numExperts: c.numExperts,
        swigluLimit: c.swigluLimit,
        label: `${name}.mlp1`,
      }),
      moeDownOp(ctx, {
        h: a.h,
        routing: a.routing[i]!,
        blocks: l.mlp2Blocks,
        scales: l.mlp2Scales,
        bias: l.mlp2Bias,
        x: a.x,
        hidden: H,
        intermediate: c.intermediateSize,
        topK: c.expertsPerToken,
        numExperts: c.numExperts,
        label: `${name}.mlp2`,
      }),
    );
    if (capture) {
      blocks.push({ copy: { src: a.routerLogits, dst: capture.routerLogits[i]!, bytes: rowBytes(c.numExperts) } });
      blocks.push({ copy: { src: a.x, dst: capture.mlpOut[i]!, bytes: rowBytes(H) } });
    }
  });

  const head = [
    rmsnormOp(ctx, { x: a.x, scale: w.norm, y: a.xf, hidden: H, eps: c.rmsNormEps, outRows: true, label: 'norm' }),
    matmulOp(ctx, { x: a.xf, w: w.unembedding, y: a.logits, k: H, n: c.vocabSize, outRows: true, label: 'unembedding' }),
  ];
  return { blocks, head, sample: sampleOp(ctx, { logits: a.logits, tokens: a.tokens, vocab: c.vocabSize }) };
}

/**
 * Encodes program items into `enc`: each run of consecutive dispatches is one compute pass; copies
 * (debug captures) sit between passes. Returns the number of dispatches.
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
      enc.copyBufferToBuffer(cp.src, 0, cp.dst, cp.dstOffset?.(shape) ?? 0, cp.bytes(shape));
    } else {
      run.push(it);
    }
  }
  flush();
  return dispatches;
}
