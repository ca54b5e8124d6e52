// RoPE with YaRN scaling (oracle README 5.2; gpt_oss/torch/model.py RotaryEmbedding), computed in
// float64 on the CPU. The engine uploads one table of (conc·cos, conc·sin) per position once; the
// rope_kv_write kernel only multiplies, so RoPE is exact to f32 even at position 131071 (a float32
// `p * inv_freq` would be off by ~3e-3 there).
import type { ModelConfig } from '../model/config.js';

export type RopeConfig = Pick<
  ModelConfig,
  'headDim' | 'ropeTheta' | 'ropeScalingFactor' | 'ropeNtkAlpha' | 'ropeNtkBeta' | 'initialContextLength' | 'ropeTruncate'
>;

/** YaRN attention scaling ("concentration"), multiplied into both cos and sin. 1 without YaRN. */
export function ropeConcentration(cfg: RopeConfig): number {
  return cfg.ropeScalingFactor > 1 ? 0.1 * Math.log(cfg.ropeScalingFactor) + 1 : 1;
}

/**
 * Bounds of the YaRN ramp over the d/2 frequency indices. OpenAI's reference uses them as computed
 * (gpt-oss configs say `truncate: false`); with `ropeTruncate` (transformers' default when the key
 * is absent, vLLM) they are floor/ceil-rounded and clamped to [0, d − 1] as transformers does.
 */
export function yarnRampBounds(cfg: RopeConfig): { low: number; high: number } {
  const d2 = cfg.headDim / 2;
  const lnTheta = Math.log(cfg.ropeTheta);
  let low = (d2 * Math.log(cfg.initialContextLength / (cfg.ropeNtkBeta * 2 * Math.PI))) / lnTheta;
  let high = (d2 * Math.log(cfg.initialContextLength / (cfg.ropeNtkAlpha * 2 * Math.PI))) / lnTheta;
  if (cfg.ropeTruncate) {
    low = Math.max(Math.floor(low), 0);
    high = Math.min(Math.ceil(high), cfg.headDim - 1);
  }
  return { low, high };
}

/** inv_freq_j for j = 0 … d/2 − 1, float64. */
export function ropeInvFreq(cfg: RopeConfig): Float64Array {
  const d = cfg.headDim;
  const d2 = d / 2;
  if (!Number.isInteger(d2) || d2 < 1) throw new Error(`RoPE: head_dim ${d} must be a positive even number`);
  const out = new Float64Array(d2);
  const factor = cfg.ropeScalingFactor;
  if (!(factor > 1)) {
    for (let j = 0; j < d2; j++) out[j] = 1 / Math.pow(cfg.ropeTheta, (2 * j) / d);
    return out;
  }
  let { low, high } = yarnRampBounds(cfg);
  if (high === low) high += 0.001; // transformers' guard against a zero-width ramp
  for (let j = 0; j < d2; j++) {
    const freq = Math.pow(cfg.ropeTheta, (2 * j) / d);
    const interpolation = 1 / (factor * freq);
    const extrapolation = 1 / freq;
    const ramp = Math.min(Math.max((j - low) / (high - low), 0), 1);
    const mask = 1 - ramp; // 1: keep the original frequency (extrapolate), 0: interpolate
    out[j] = interpolation * (1 - mask) + extrapolation * mask;
  }
  return out;
}

/**
 * The table the rope_kv_write kernel reads: f32 [positions][d/2][2] holding
 * (conc·cos(p·inv_freq_j), conc·sin(p·inv_freq_j)), computed in float64 and rounded once.
 * `positions` = the context length (the KV capacity of full layers). 4 · d · positions bytes.
 */
export function ropeTable(cfg: RopeConfig, positions: number): Float32Array {
  if (!Number.isInteger(positions) || positions < 1) throw new Error(`RoPE table: positions must be ≥ 1, got ${positions}`);
  const inv = ropeInvFreq(cfg);
  const d2 = inv.length;
  const conc = ropeConcentration(cfg);
  const out = new Float32Array(positions * d2 * 2);
  for (let p = 0; p < positions; p++) {
    const base = p * d2 * 2;
    for (let j = 0; j < d2; j++) {
      const a = p * inv[j]!;
      out[base + 2 * j] = Math.cos(a) * conc;
      out[base + 2 * j + 1] = Math.sin(a) * conc;
    }
  }
  return out;
}
