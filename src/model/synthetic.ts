// Random-weight gpt-oss models, for tests, offline smoke runs and benchmarks: in memory (a tensor
// source the engine loads like a checkpoint) or written to disk in the Hugging Face layout.
// Scales follow the oracle fixtures: residual stream of RMS ~2, peaked-but-not-one-hot attention,
// MXFP4 experts whose gate/up values sometimes pass the swiglu limit, so routing and the clamps
// behave like a trained model's.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expectedTensors, type CanonicalTensor, type TensorSpec } from './checkpoint.js';
import { configFromPreset, type ModelConfig } from './config.js';
import { f32ToBf16Array } from './mxfp4.js';
import { writeSafetensors, type TensorToWrite } from './safetensors.js';

const O200K_HARMONY_VOCAB = 201088;
/** <|return|>, <|call|>: harmony's stop tokens. */
const HARMONY_EOS = [200002, 200012];
/**
 * <|return|>, which ends an assistant's answer (the server stops there). Random weights would
 * sample it about once in 200k tokens, so a chat with a synthetic model would run to max_tokens:
 * its unembedding row gets a larger norm instead, which makes its logit ~N(0, END_ROW_NORM) per
 * step (the other rows' ~N(0, 1.3)), over the ~13 of the whole vocabulary's log-sum-exp about
 * 3% of the steps: answers of about 35 tokens on average at temperature 1. A random message
 * header is read as a plain (final) message, so that is the answer's text. `bench` and tests
 * that need a fixed length ignore end tokens (no stop tokens, or `ignore_eos`).
 */
const END_OF_ANSWER = 200002;
export const END_ROW_NORM = 7;

/** Shapes of the synthetic models: the real gpt-oss configs, and tiny ones for CPU runs. */
export const SYNTHETIC_PRESETS: Record<string, () => ModelConfig> = {
  '20b': () =>
    configFromPreset({
      numLayers: 24, numExperts: 32, expertsPerToken: 4, vocabSize: O200K_HARMONY_VOCAB, hiddenSize: 2880,
      intermediateSize: 2880, numHeads: 64, numKvHeads: 8, headDim: 64, slidingWindow: 128, eosTokenIds: HARMONY_EOS,
    }, 'synthetic:20b'),
  '120b': () =>
    configFromPreset({
      numLayers: 36, numExperts: 128, expertsPerToken: 4, vocabSize: O200K_HARMONY_VOCAB, hiddenSize: 2880,
      intermediateSize: 2880, numHeads: 64, numKvHeads: 8, headDim: 64, slidingWindow: 128, eosTokenIds: HARMONY_EOS,
    }, 'synthetic:120b'),
  // full o200k_harmony vocabulary, tiny everything else: serves real text through the tokenizer
  tiny: () =>
    configFromPreset({
      numLayers: 2, numExperts: 8, expertsPerToken: 2, vocabSize: O200K_HARMONY_VOCAB, hiddenSize: 64,
      intermediateSize: 64, numHeads: 2, numKvHeads: 1, headDim: 64, slidingWindow: 128, eosTokenIds: HARMONY_EOS,
    }, 'synthetic:tiny'),
  // full vocabulary too, a different shape (more layers, experts and heads): a second model for
  // multi-model servers in tests
  medium: () =>
    configFromPreset({
      numLayers: 4, numExperts: 16, expertsPerToken: 4, vocabSize: O200K_HARMONY_VOCAB, hiddenSize: 128,
      intermediateSize: 128, numHeads: 4, numKvHeads: 2, headDim: 64, slidingWindow: 128, eosTokenIds: HARMONY_EOS,
    }, 'synthetic:medium'),
  // a few MB: the quickest model that still has every part (GQA, both layer types, top-k of many)
  mini: () =>
    configFromPreset({
      numLayers: 2, numExperts: 16, expertsPerToken: 4, vocabSize: 512, hiddenSize: 64, intermediateSize: 64,
      numHeads: 4, numKvHeads: 1, headDim: 64, slidingWindow: 16,
    }, 'synthetic:mini'),
};

/**
 * The config of synthetic:NAME; `layers` keeps the real dimensions with fewer (or more) layers,
 * alternating sliding and full attention as the real configs do, so real-shaped kernels can be
 * timed on a CPU.
 */
export function syntheticConfig(name: string, opts: { layers?: number } = {}): ModelConfig {
  const make = SYNTHETIC_PRESETS[name];
  if (!make) {
    throw new Error(`unknown synthetic model "${name}"; known: ${Object.keys(SYNTHETIC_PRESETS).map((n) => `synthetic:${n}`).join(', ')}`);
  }
  const c = make();
  if (opts.layers === undefined) return c;
  if (!Number.isInteger(opts.layers) || opts.layers < 1) throw new Error(`layers must be a positive integer, got ${opts.layers}`);
  const { layerTypes: _drop, ...rest } = c;
  return configFromPreset({ ...rest, numLayers: opts.layers }, `synthetic:${name} with ${opts.layers} layers`);
}

/** A synthetic spec's options: `synthetic:NAME[,layers=N][,seed=S][,zero-from=Z]`. */
export interface SyntheticSpec {
  name: string;
  layers?: number;
  seed?: number;
  /**
   * Layers from this index on add nothing to the residual stream (their attention output and MoE
   * down projections are zero), so the model computes what its first `zeroFrom` layers do: a
   * target whose draft (those layers alone) agrees with it on every token.
   */
  zeroFrom?: number;
}

export function parseSyntheticSpec(spec: string): SyntheticSpec {
  const [name, ...opts] = spec.replace(/^synthetic:/, '').split(',');
  const out: SyntheticSpec = { name: name! };
  for (const o of opts) {
    const m = /^(layers|seed|zero-from)=(\d+)$/.exec(o);
    if (!m) throw new Error(`synthetic model option "${o}" in ${spec}: expected layers=N, seed=S or zero-from=Z`);
    const v = Number(m[2]);
    if (m[1] === 'layers') out.layers = v;
    else if (m[1] === 'seed') out.seed = v;
    else out.zeroFrom = v;
  }
  return out;
}

const ZEROED = /^layers\.(\d+)\.(attn_out\.weight|attn_out\.bias|mlp2\.blocks|mlp2\.bias)$/;

/** tensorStats, with the output projections of layers from `zeroFrom` on all zero (FP4 code 0 is +0). */
function statsOf(c: ModelConfig, name: string, zeroFrom?: number): TensorStats {
  const m = zeroFrom === undefined ? null : ZEROED.exec(name);
  if (m && Number(m[1]) >= zeroFrom!) return m[2] === 'mlp2.blocks' ? { kind: 'scales', lo: 0, span: 1 } : { kind: 'normal', mean: 0, std: 0 };
  return tensorStats(c, name);
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function nameSeed(name: string, seed: number): number {
  let h = 2166136261 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0;
}

function gaussians(r: () => number, n: number, std: number, mean = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

/** E8M0 byte whose scale makes a row of `k` random FP4 values dot a unit-RMS vector to about `target`. */
function scaleByte(k: number, target: number): number {
  // E|FP4 value|^2 over the 16 codes is ~11.1
  return Math.round(127 + Math.log2(target / Math.sqrt(k * 11.1)));
}

/** How a canonical tensor's random values are drawn; shared by the CPU and GPU generators. */
export type TensorStats =
  | { kind: 'codes' } // uniform random MXFP4 nibbles
  | { kind: 'scales'; lo: number; span: number } // E8M0 bytes in [lo, lo + span)
  | { kind: 'normal'; mean: number; std: number };

export function tensorStats(c: ModelConfig, name: string): TensorStats {
  const base = name.replace(/^layers\.\d+\./, '');
  if (base.endsWith('blocks')) return { kind: 'codes' };
  if (base.endsWith('scales')) {
    const up = base.startsWith('mlp1');
    return { kind: 'scales', lo: scaleByte(up ? c.hiddenSize : c.intermediateSize, up ? 3.5 : 1.0) - 1, span: 3 };
  }
  if (base === 'attn_norm' || base === 'mlp_norm' || base === 'norm') return { kind: 'normal', mean: 1, std: 0.1 };
  const H = c.hiddenSize;
  const std: Record<string, number> = {
    embedding: 2,
    unembedding: 1.3 / Math.sqrt(H),
    'qkv.weight': 1.2 / Math.sqrt(H),
    'attn_out.weight': 1 / Math.sqrt(c.numHeads * c.headDim),
    'router.weight': 2 / Math.sqrt(H),
    sinks: 1,
    'mlp1.bias': 0.2,
  };
  return { kind: 'normal', mean: 0, std: std[base] ?? 0.1 };
}

/**
 * Rows (of the first dimension) drawn apart from the rest of their tensor, as bf16 bytes: the
 * unembedding row of the end of an answer, with a norm of END_ROW_NORM (models with the
 * o200k_harmony vocabulary only).
 */
export function syntheticRows(c: ModelConfig, name: string, seed: number): Map<number, Uint8Array> {
  if (name !== 'unembedding' || c.vocabSize !== O200K_HARMONY_VOCAB) return new Map();
  const row = gaussians(rng(nameSeed('unembedding.end_of_answer', seed)), c.hiddenSize, END_ROW_NORM / Math.sqrt(c.hiddenSize));
  return new Map([[END_OF_ANSWER, new Uint8Array(f32ToBf16Array(row).buffer)]]);
}

/** The bytes of one canonical tensor (bf16 or u8), the same for a given (config, name, seed). */
export function syntheticTensorBytes(c: ModelConfig, spec: TensorSpec, seed: number, zeroFrom?: number): Uint8Array {
  const r = rng(nameSeed(spec.name, seed));
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const st = statsOf(c, spec.name, zeroFrom);
  if (st.kind === 'normal') {
    const bytes = new Uint8Array(f32ToBf16Array(gaussians(r, n, st.std, st.mean)).buffer);
    const rowBytes = bytes.byteLength / spec.shape[0]!;
    for (const [i, row] of syntheticRows(c, spec.name, seed)) bytes.set(row, i * rowBytes);
    return bytes;
  }
  const u8 = new Uint8Array(n);
  for (let i = 0; i < n; i++) u8[i] = st.kind === 'codes' ? Math.floor(r() * 256) : st.lo + Math.floor(r() * st.span);
  return u8;
}

/**
 * A random model whose weights the GPU generates in place (see shaders/fill_random.wgsl): loads
 * gpt-oss-120b-sized models in seconds with no file and no host memory.
 */
export function syntheticGpuSource(c: ModelConfig, seed = 1, zeroFrom?: number) {
  const specs = new Map(expectedTensors(c).map((s) => [s.name, s]));
  return {
    config: c,
    tensor(name: string): CanonicalTensor {
      const s = specs.get(name);
      if (!s) throw new Error(`synthetic model: no tensor "${name}"`);
      const bytes = s.shape.reduce((a, b) => a * b, 1) * (s.dtypes[0] === 'U8' ? 1 : 2);
      return { name, dtype: s.dtypes[0]!, shape: s.shape, byteLength: bytes, parts: [] };
    },
    fill(name: string): TensorStats & { seed: number } {
      return { ...statsOf(c, name, zeroFrom), seed: nameSeed(name, seed) };
    },
    rows(name: string): Map<number, Uint8Array> {
      return syntheticRows(c, name, seed);
    },
  };
}

/** config.json in the Hugging Face gpt_oss dialect. */
export function hfConfigJson(c: ModelConfig): Record<string, unknown> {
  return {
    architectures: ['GptOssForCausalLM'],
    model_type: 'gpt_oss',
    num_hidden_layers: c.numLayers,
    num_local_experts: c.numExperts,
    num_experts_per_tok: c.expertsPerToken,
    experts_per_token: c.expertsPerToken,
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    sliding_window: c.slidingWindow,
    layer_types: c.layerTypes.map((t) => (t === 'sliding' ? 'sliding_attention' : 'full_attention')),
    rope_theta: c.ropeTheta,
    rope_scaling: {
      rope_type: 'yarn',
      factor: c.ropeScalingFactor,
      beta_fast: c.ropeNtkBeta,
      beta_slow: c.ropeNtkAlpha,
      original_max_position_embeddings: c.initialContextLength,
      truncate: c.ropeTruncate,
    },
    initial_context_length: c.initialContextLength,
    max_position_embeddings: c.maxPositionEmbeddings,
    swiglu_limit: c.swigluLimit,
    rms_norm_eps: c.rmsNormEps,
    attention_bias: true,
    tie_word_embeddings: false,
    hidden_act: 'silu',
    ...(c.eosTokenIds.length ? { eos_token_id: c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds } : {}),
    quantization_config: {
      quant_method: 'mxfp4',
      modules_to_not_convert: ['model.layers.*.self_attn', 'model.layers.*.mlp.router', 'model.embed_tokens', 'lm_head'],
    },
  };
}

/** Writes `config.json` + `model.safetensors` (Hugging Face names) for a random model into `dir`. */
export async function writeSyntheticCheckpoint(dir: string, c: ModelConfig, seed = 1, zeroFrom?: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(hfConfigJson(c), null, 2) + '\n');
  const out: TensorToWrite[] = [];
  for (const spec of expectedTensors(c)) {
    const bytes = syntheticTensorBytes(c, spec, seed, zeroFrom);
    // HF splits qkv into q/k/v along the first dimension
    let offset = 0;
    for (const s of spec.sources.hf) {
      const len = (bytes.byteLength / spec.shape[0]!) * s.shape[0]!;
      const part = bytes.slice(offset, offset + len);
      offset += len;
      const dtype = spec.dtypes[0]!;
      out.push({ name: s.name, dtype, shape: s.shape, data: dtype === 'U8' ? part : new Uint16Array(part.buffer) });
    }
  }
  await writeSafetensors(join(dir, 'model.safetensors'), out, { format: 'pt' });
}
