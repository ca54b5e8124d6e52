// Random-weight gpt-oss checkpoints in the Hugging Face layout, for tests, offline smoke runs and
// benchmarks. Scales follow the oracle fixtures: residual stream of RMS ~2, peaked-but-not-one-hot
// attention, MXFP4 experts whose gate/up values sometimes pass the swiglu limit, so routing and
// the clamps behave like a trained model's.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expectedTensors } from './checkpoint.js';
import type { ModelConfig } from './config.js';
import { f32ToBf16Array } from './mxfp4.js';
import { writeSafetensors, type TensorToWrite } from './safetensors.js';

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

function gaussians(r: () => number, n: number, std: number, mean = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

/** E8M0 byte whose scale makes a row of `k` random FP4 values dot a unit vector to about `target`. */
function scaleByte(k: number, target: number): number {
  // E|FP4 value|^2 over the 16 codes is ~11.1
  return Math.round(127 + Math.log2(target / Math.sqrt(k * 11.1)));
}

/** The tensors of a random model under their Hugging Face names. */
export function syntheticTensors(c: ModelConfig, seed = 1): TensorToWrite[] {
  const r = rng(seed);
  const H = c.hiddenSize;
  const out: TensorToWrite[] = [];
  for (const spec of expectedTensors(c)) {
    for (const s of spec.sources.hf) {
      const n = s.shape.reduce((a, b) => a * b, 1);
      const base = spec.name.replace(/^layers\.\d+\./, '');
      let data: ArrayBufferView;
      if (base.endsWith('blocks')) {
        const u8 = new Uint8Array(n);
        for (let i = 0; i < n; i++) u8[i] = Math.floor(r() * 256);
        data = u8;
      } else if (base.endsWith('scales')) {
        const k = base.startsWith('mlp1') ? H : c.intermediateSize;
        const mid = scaleByte(k, base.startsWith('mlp1') ? 3.5 : 1.0);
        const u8 = new Uint8Array(n);
        for (let i = 0; i < n; i++) u8[i] = mid - 1 + Math.floor(r() * 3);
        data = u8;
      } else {
        const std: Record<string, number> = {
          embedding: 2,
          unembedding: 1.3 / Math.sqrt(H),
          'qkv.weight': 1.2 / Math.sqrt(H),
          'attn_out.weight': 1 / Math.sqrt(c.numHeads * c.headDim),
          'router.weight': 2 / Math.sqrt(H),
          'qkv.bias': 0.1,
          'attn_out.bias': 0.1,
          'router.bias': 0.1,
          'mlp1.bias': 0.2,
          'mlp2.bias': 0.1,
          sinks: 1,
        };
        const isScale = base === 'attn_norm' || base === 'mlp_norm' || base === 'norm';
        data = f32ToBf16Array(isScale ? gaussians(r, n, 0.1, 1) : gaussians(r, n, std[base] ?? 0.1));
      }
      out.push({ name: s.name, dtype: spec.dtypes[0]!, shape: s.shape, data });
    }
  }
  return out;
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
    eos_token_id: c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds,
    quantization_config: {
      quant_method: 'mxfp4',
      modules_to_not_convert: ['model.layers.*.self_attn', 'model.layers.*.mlp.router', 'model.embed_tokens', 'lm_head'],
    },
  };
}

/** Writes `config.json` + `model.safetensors` for a random model into `dir`. */
export async function writeSyntheticCheckpoint(dir: string, c: ModelConfig, seed = 1): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(hfConfigJson(c), null, 2) + '\n');
  await writeSafetensors(join(dir, 'model.safetensors'), syntheticTensors(c, seed), { format: 'pt' });
}
