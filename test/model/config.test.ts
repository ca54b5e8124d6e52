import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import {
  configFromPreset, detectConfigDialect, loadModelConfig, parseModelConfig, type ModelConfig,
} from '../../src/model/config.js';
import { CheckpointError } from '../../src/model/safetensors.js';
import { manifest } from '../helpers/oracle.js';
import { ORACLE, ORACLE_MODELS, removeTempDirs, tempDir } from './fixtures.js';

afterAll(removeTempDirs);

async function rawConfig(model: string, layout: 'hf' | 'original'): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(ORACLE, model, layout, 'config.json'), 'utf8')) as Record<string, unknown>;
}

function expectConfigError(fn: () => unknown, ...fragments: string[]): void {
  let err: unknown = null;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a CheckpointError').toBeInstanceOf(CheckpointError);
  for (const f of fragments) expect((err as Error).message).toContain(f);
}

test('the oracle has the three models', () => {
  expect(ORACLE_MODELS).toEqual(['tiny-e128k4', 'tiny-e32k4', 'tiny-e64k2']);
});

describe.each(ORACLE_MODELS)('%s config', (model) => {
  test('both dialects parse to the same ModelConfig, matching the manifest', async () => {
    const hf = await loadModelConfig(join(ORACLE, model, 'hf'));
    const orig = await loadModelConfig(join(ORACLE, model, 'original'));
    expect(hf.dialect).toBe('hf');
    expect(orig.dialect).toBe('original');
    const m = manifest(model);
    const s = m['shapes'] as Record<string, unknown>;
    // The original dialect has no eos ids; everything else must agree.
    expect(hf.config.eosTokenIds).toEqual([m['eos_token_id']]);
    expect(orig.config.eosTokenIds).toEqual([]);
    expect({ ...orig.config, eosTokenIds: hf.config.eosTokenIds }).toEqual(hf.config);
    const want: Partial<ModelConfig> = {
      numLayers: s['layers'] as number, numExperts: s['experts'] as number, expertsPerToken: s['top_k'] as number,
      vocabSize: s['vocab'] as number, hiddenSize: s['hidden'] as number, intermediateSize: s['intermediate'] as number,
      numHeads: s['q_heads'] as number, numKvHeads: s['kv_heads'] as number, headDim: s['head_dim'] as number,
      slidingWindow: s['sliding_window'] as number, swigluLimit: s['swiglu_limit'] as number,
      ropeTheta: s['rope_theta'] as number, ropeScalingFactor: s['yarn_factor'] as number,
      initialContextLength: s['initial_context_length'] as number,
      ropeNtkAlpha: s['ntk_alpha'] as number, ropeNtkBeta: s['ntk_beta'] as number, rmsNormEps: s['rms_norm_eps'] as number,
      layerTypes: (s['layer_types'] as string[]).map((t) => (t === 'sliding_attention' ? 'sliding' : 'full')),
      ropeTruncate: false, maxPositionEmbeddings: 131072,
    };
    expect(hf.config).toMatchObject(want);
  });
});

describe('config details', () => {
  test('eos ids: number or list, merged with generation_config.json, deduplicated', async () => {
    const dir = await tempDir('cfg');
    const cfg = await rawConfig('tiny-e64k2', 'hf');
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...cfg, eos_token_id: [200002, 199999] }));
    await writeFile(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [200002, 200012], pad_token_id: 199999 }));
    expect((await loadModelConfig(dir)).config.eosTokenIds).toEqual([200002, 199999, 200012]);
    await writeFile(join(dir, 'generation_config.json'), '{broken');
    await expect(loadModelConfig(dir)).rejects.toThrow(/generation_config\.json: cannot parse/);
  });

  test('detects dialects and rejects other models', () => {
    expect(detectConfigDialect({ model_type: 'gpt_oss' })).toBe('hf');
    expect(detectConfigDialect({ num_hidden_layers: 1, num_experts: 2, experts_per_token: 1 })).toBe('original');
    expect(detectConfigDialect({ hidden_size: 3 })).toBeNull();
    expectConfigError(() => parseModelConfig({ hidden_size: 3 }, 'x/config.json'), 'x/config.json', 'neither');
    expectConfigError(() => parseModelConfig({ model_type: 'llama' }, 'x/config.json'), 'x/config.json', '"model_type"', 'llama');
  });

  test('HF: missing layer_types alternate sliding/full, truncate defaults to true, rope_parameters accepted', async () => {
    const cfg = await rawConfig('tiny-e32k4', 'hf');
    const { layer_types: _, rope_scaling: rs, rope_theta: theta, ...rest } = cfg;
    const ropeNoTruncate = { ...(rs as Record<string, unknown>) };
    delete ropeNoTruncate['truncate'];
    const { config } = parseModelConfig({ ...rest, rope_parameters: { ...ropeNoTruncate, rope_theta: theta } }, 'c.json');
    expect(config.layerTypes).toEqual(['sliding', 'full', 'sliding', 'full']);
    expect(config.ropeTruncate).toBe(true);
    expect(config.ropeTheta).toBe(150000);
    expect(config.ropeNtkAlpha).toBe(1);
    expect(config.ropeNtkBeta).toBe(32);
    // Without YaRN the scaling collapses to plain RoPE.
    const plain = parseModelConfig({ ...rest, rope_theta: 10000 }, 'c.json').config;
    expect(plain).toMatchObject({ ropeScalingFactor: 1, ropeTheta: 10000, ropeTruncate: false });
  });

  test('original: defaults for optional fields', async () => {
    const cfg = await rawConfig('tiny-e128k4', 'original');
    const { rope_theta: _a, rope_scaling_factor: _b, rope_ntk_alpha: _c, rope_ntk_beta: _d, swiglu_limit: _e, ...rest } = cfg;
    const { config } = parseModelConfig(rest, 'o.json');
    expect(config).toMatchObject({
      ropeTheta: 150000, ropeScalingFactor: 32, ropeNtkAlpha: 1, ropeNtkBeta: 32, swigluLimit: 7,
      rmsNormEps: 1e-5, maxPositionEmbeddings: 131072, ropeTruncate: false,
      layerTypes: ['sliding', 'full', 'sliding'],
    });
  });

  test('configFromPreset builds and validates a synthetic model', () => {
    const c = configFromPreset({
      numLayers: 3, numExperts: 8, expertsPerToken: 2, vocabSize: 100, hiddenSize: 64, intermediateSize: 32,
      numHeads: 4, numKvHeads: 2, headDim: 16, slidingWindow: 8,
    });
    expect(c.layerTypes).toEqual(['sliding', 'full', 'sliding']);
    expect(c).toMatchObject({ ropeTheta: 150000, ropeScalingFactor: 32, rmsNormEps: 1e-5, eosTokenIds: [] });
    expectConfigError(() => configFromPreset({ ...c, hiddenSize: 48 }), 'preset', '"hiddenSize"', 'multiple of 32');
  });
});

describe('config validation errors name the file and the field', () => {
  const cases: [string, 'hf' | 'original', Record<string, unknown>, string[]][] = [
    ['hidden not a multiple of 32', 'hf', { hidden_size: 80 }, ['"hidden_size"', 'multiple of 32']],
    ['intermediate not a multiple of 32', 'original', { intermediate_size: 72 }, ['"intermediate_size"', 'multiple of 32']],
    ['heads not divisible by kv heads', 'hf', { num_key_value_heads: 3 }, ['"num_key_value_heads"', 'must divide']],
    ['more experts per token than experts', 'hf', { num_experts_per_tok: 200, experts_per_token: 200 }, ['"num_experts_per_tok"', 'must not exceed']],
    ['duplicate experts-per-token fields disagree', 'hf', { experts_per_token: 2 }, ['"experts_per_token"', 'disagrees']],
    ['odd head_dim', 'original', { head_dim: 63 }, ['"head_dim"', 'even']],
    ['q width not a multiple of 8', 'hf', { head_dim: 2, num_attention_heads: 3, num_key_value_heads: 1 }, ['"num_attention_heads"', 'multiple of 8']],
    ['zero layers', 'hf', { num_hidden_layers: 0 }, ['"num_hidden_layers"', 'positive integer']],
    ['fractional vocab', 'original', { vocab_size: 511.5 }, ['"vocab_size"', 'positive integer']],
    ['string size', 'hf', { hidden_size: '64' }, ['"hidden_size"', 'finite number']],
    ['missing field', 'original', { num_attention_heads: undefined }, ['"num_attention_heads"', 'missing']],
    ['layer_types length', 'hf', { layer_types: ['sliding_attention'] }, ['"layer_types"', '1 entries']],
    ['layer_types value', 'hf', { layer_types: ['sliding_attention', 'chunked', 'full_attention'] }, ['"layer_types[1]"', 'chunked']],
    ['unsupported quantization', 'hf', { quantization_config: { quant_method: 'bitsandbytes' } }, ['"quantization_config.quant_method"', 'mxfp4']],
    ['unsupported rope', 'hf', { rope_scaling: { rope_type: 'linear', factor: 2 } }, ['"rope_scaling.rope_type"', 'linear']],
    ['negative eps', 'hf', { rms_norm_eps: -1 }, ['"rms_norm_eps"', 'positive number']],
    ['bad eos', 'hf', { eos_token_id: 'x' }, ['"eos_token_id"']],
    ['bad yarn factor', 'original', { rope_scaling_factor: 0.5 }, ['"rope_scaling_factor"', '≥ 1']],
  ];
  test.each(cases)('%s', async (_name, layout, patch, fragments) => {
    const base = await rawConfig('tiny-e128k4', layout);
    const source = `/models/${layout}/config.json`;
    expectConfigError(() => parseModelConfig({ ...base, ...patch }, source), source, ...fragments);
  });

  test('unchanged configs pass (the cases above fail only because of their patch)', async () => {
    for (const layout of ['hf', 'original'] as const) {
      expect(parseModelConfig(await rawConfig('tiny-e128k4', layout), 'x').config.numLayers).toBe(3);
    }
  });

  test('unreadable and malformed config.json', async () => {
    const dir = await tempDir('cfg');
    await expect(loadModelConfig(dir)).rejects.toThrow(/config\.json: cannot read/);
    await writeFile(join(dir, 'config.json'), '{"model_type": "gpt_oss",');
    await expect(loadModelConfig(dir)).rejects.toThrow(/config\.json: not valid JSON/);
  });
});
