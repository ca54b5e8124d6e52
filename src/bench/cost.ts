// Bytes of weights one decode step reads, from the config alone: what our kernels read, and the
// floor (performance.md): bf16 attention, router and unembedding, the top-k experts in MXFP4
// (4.25 bits a weight with the scales), bf16 biases and norms.
import type { ModelConfig } from '../model/config.js';

export interface DecodeBytes {
  /** What the decode kernels read (norms and biases are stored widened to f32). */
  read: number;
  /** The minimum a batch-1 decode step must read. */
  min: number;
}

export function decodeWeightBytes(c: ModelConfig): DecodeBytes {
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  const k = c.expertsPerToken;
  const qkv = (c.numHeads + 2 * c.numKvHeads) * c.headDim;
  const o = c.numHeads * c.headDim;
  // bf16 matrices, read whole at batch 1
  const matrices = 2 * (qkv * H + H * o + c.numExperts * H);
  // MXFP4: half a byte per weight plus one scale byte per 32
  const experts = k * ((2 * I * H) / 2 + (2 * I * H) / 32 + (H * I) / 2 + (H * I) / 32);
  const vectorCount = 2 * H + qkv + c.numHeads + H + c.numExperts + k * (2 * I + H);
  const perLayerMin = matrices + experts + 2 * vectorCount;
  const perLayerRead = matrices + experts + 4 * vectorCount;
  const outside = 2 * H /* embedding row */ + 2 * c.vocabSize * H; /* unembedding */
  return {
    read: c.numLayers * perLayerRead + outside + 4 * H /* final norm, f32 */,
    min: c.numLayers * perLayerMin + outside + 2 * H,
  };
}

/** What a measured step's minimum depends on (engine StepBytes). */
export interface StepSize {
  tokens: number;
  /** Logits rows. */
  rows: number;
  /** Distinct experts its tokens used, summed over layers. */
  usedExperts: number;
}

/**
 * The weight bytes a step must read: every dense matrix once, each expert its routing used once,
 * the unembedding once when it has logits rows, an embedding row per token (bf16 vectors).
 */
export function stepWeightFloor(c: ModelConfig, s: StepSize): number {
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  const qkv = (c.numHeads + 2 * c.numKvHeads) * c.headDim;
  const o = c.numHeads * c.headDim;
  // matrices, then the vectors: two norms, the qkv bias, the sinks, the out bias, the router bias
  const dense = c.numLayers * 2 * (qkv * H + H * o + c.numExperts * H + 2 * H + qkv + c.numHeads + H + c.numExperts);
  const expert = (2 * I * H + H * I) * (0.5 + 1 / 32) + 2 * (2 * I + H);
  return dense + s.usedExperts * expert + (s.rows ? 2 * c.vocabSize * H + 2 * H : 0) + s.tokens * 2 * H;
}

/** The weight-product multiply-adds a step must do: each token through every matrix and its k experts, each logits row through the unembedding. */
export function stepMacsFloor(c: ModelConfig, s: Pick<StepSize, 'tokens' | 'rows'>): number {
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  const qkv = (c.numHeads + 2 * c.numKvHeads) * c.headDim;
  const o = c.numHeads * c.headDim;
  const perToken = c.numLayers * (qkv * H + o * H + c.numExperts * H + c.expertsPerToken * 3 * I * H);
  return s.tokens * perToken + s.rows * c.vocabSize * H;
}
