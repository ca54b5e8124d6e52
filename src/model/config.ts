// config.json in both dialects (Hugging Face `gpt_oss` and OpenAI's original ModelConfig) →
// one validated ModelConfig. Every error names the config file and the field in that file's own
// vocabulary, so a user can find and fix it.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointError } from './safetensors.js';

export interface ModelConfig {
  numLayers: number; numExperts: number; expertsPerToken: number;
  vocabSize: number; hiddenSize: number; intermediateSize: number;
  numHeads: number; numKvHeads: number; headDim: number;
  slidingWindow: number; layerTypes: ('sliding' | 'full')[];   // length numLayers
  ropeTheta: number; ropeScalingFactor: number; ropeNtkAlpha: number; ropeNtkBeta: number;  // alpha = HF beta_slow, beta = HF beta_fast
  ropeTruncate: boolean; initialContextLength: number; maxPositionEmbeddings: number;
  swigluLimit: number; rmsNormEps: number;
  eosTokenIds: number[];  // from config.json and generation_config.json when present, else []
}

export type ConfigDialect = 'hf' | 'original';

type Json = Record<string, unknown>;

/** Where each ModelConfig field comes from, for error messages. */
type FieldNames = Record<keyof ModelConfig, string>;

const HF_FIELDS: FieldNames = {
  numLayers: 'num_hidden_layers', numExperts: 'num_local_experts', expertsPerToken: 'num_experts_per_tok',
  vocabSize: 'vocab_size', hiddenSize: 'hidden_size', intermediateSize: 'intermediate_size',
  numHeads: 'num_attention_heads', numKvHeads: 'num_key_value_heads', headDim: 'head_dim',
  slidingWindow: 'sliding_window', layerTypes: 'layer_types',
  ropeTheta: 'rope_theta', ropeScalingFactor: 'rope_scaling.factor',
  ropeNtkAlpha: 'rope_scaling.beta_slow', ropeNtkBeta: 'rope_scaling.beta_fast',
  ropeTruncate: 'rope_scaling.truncate', initialContextLength: 'initial_context_length',
  maxPositionEmbeddings: 'max_position_embeddings', swigluLimit: 'swiglu_limit', rmsNormEps: 'rms_norm_eps',
  eosTokenIds: 'eos_token_id',
};

const ORIGINAL_FIELDS: FieldNames = {
  numLayers: 'num_hidden_layers', numExperts: 'num_experts', expertsPerToken: 'experts_per_token',
  vocabSize: 'vocab_size', hiddenSize: 'hidden_size', intermediateSize: 'intermediate_size',
  numHeads: 'num_attention_heads', numKvHeads: 'num_key_value_heads', headDim: 'head_dim',
  slidingWindow: 'sliding_window', layerTypes: 'layer_types',
  ropeTheta: 'rope_theta', ropeScalingFactor: 'rope_scaling_factor',
  ropeNtkAlpha: 'rope_ntk_alpha', ropeNtkBeta: 'rope_ntk_beta',
  ropeTruncate: 'rope_truncate', initialContextLength: 'initial_context_length',
  maxPositionEmbeddings: 'max_position_embeddings', swigluLimit: 'swiglu_limit', rmsNormEps: 'rms_norm_eps',
  eosTokenIds: 'eos_token_id',
};

const PRESET_FIELDS = Object.fromEntries(Object.keys(HF_FIELDS).map((k) => [k, k])) as FieldNames;

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Reads fields of one JSON object, raising errors that name the file and the field. */
class FieldReader {
  constructor(readonly source: string, readonly obj: Json, readonly prefix = '') {}

  fail(field: string, msg: string): never {
    throw new CheckpointError(`${this.source}: field "${this.prefix}${field}" ${msg}`);
  }

  has(field: string): boolean {
    return this.obj[field] !== undefined && this.obj[field] !== null;
  }

  num(field: string, fallback?: number): number {
    const v = this.obj[field];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      this.fail(field, 'is missing');
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(field, `must be a finite number, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.obj[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') this.fail(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  /** Number or array of numbers (eos_token_id), [] when absent. */
  ids(field: string): number[] {
    const v = this.obj[field];
    if (v === undefined || v === null) return [];
    const arr = Array.isArray(v) ? v : [v];
    for (const x of arr) {
      if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) {
        this.fail(field, `must be a token id or a list of token ids, got ${JSON.stringify(v)}`);
      }
    }
    return arr as number[];
  }
}

function alternatingLayerTypes(n: number): ('sliding' | 'full')[] {
  // gpt-oss: sliding at even layer indices, full attention at odd ones.
  return Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 'sliding' : 'full'));
}

function parseLayerTypes(r: FieldReader, field: string, numLayers: number): ('sliding' | 'full')[] {
  const v = r.obj[field];
  if (v === undefined || v === null) return alternatingLayerTypes(numLayers);
  if (!Array.isArray(v)) r.fail(field, `must be a list, got ${JSON.stringify(v)}`);
  return v.map((x, i) => {
    if (x === 'sliding_attention' || x === 'sliding') return 'sliding';
    if (x === 'full_attention' || x === 'full') return 'full';
    return r.fail(`${field}[${i}]`, `must be "sliding_attention" or "full_attention", got ${JSON.stringify(x)}`);
  });
}

/** Which dialect a parsed config.json is written in, or null when it is neither. */
export function detectConfigDialect(json: unknown): ConfigDialect | null {
  if (!isObject(json)) return null;
  if (json['model_type'] !== undefined || json['architectures'] !== undefined) return 'hf';
  if (json['num_experts'] !== undefined && json['experts_per_token'] !== undefined && json['num_hidden_layers'] !== undefined) {
    return 'original';
  }
  return null;
}

function parseHfConfig(r: FieldReader): Omit<ModelConfig, 'eosTokenIds'> {
  const j = r.obj;
  if (j['model_type'] !== undefined && j['model_type'] !== 'gpt_oss') {
    r.fail('model_type', `is ${JSON.stringify(j['model_type'])}; only "gpt_oss" models are supported`);
  }
  if (j['model_type'] === undefined) {
    const arch = j['architectures'];
    if (!Array.isArray(arch) || !arch.includes('GptOssForCausalLM')) {
      r.fail('architectures', `is ${JSON.stringify(arch)}; expected ["GptOssForCausalLM"]`);
    }
  }
  const q = j['quantization_config'];
  if (isObject(q) && q['quant_method'] !== undefined && q['quant_method'] !== 'mxfp4') {
    r.fail('quantization_config.quant_method', `is ${JSON.stringify(q['quant_method'])}; only "mxfp4" checkpoints are supported`);
  }

  const numLayers = r.num('num_hidden_layers');
  const numHeads = r.num('num_attention_heads');
  const hiddenSize = r.num('hidden_size');
  const expertsPerToken = r.has('num_experts_per_tok') ? r.num('num_experts_per_tok') : r.num('experts_per_token');
  if (r.has('num_experts_per_tok') && r.has('experts_per_token') && r.num('experts_per_token') !== expertsPerToken) {
    r.fail('experts_per_token', `(${r.num('experts_per_token')}) disagrees with "num_experts_per_tok" (${expertsPerToken})`);
  }

  // transformers ≥ 5 renames rope_scaling to rope_parameters (rope_theta moves inside it).
  const ropeField = r.has('rope_scaling') ? 'rope_scaling' : r.has('rope_parameters') ? 'rope_parameters' : null;
  const ropeRaw = ropeField ? j[ropeField] : undefined;
  if (ropeField && !isObject(ropeRaw)) r.fail(ropeField, `must be an object, got ${JSON.stringify(ropeRaw)}`);
  const rope = new FieldReader(r.source, ropeField ? (ropeRaw as Json) : {}, ropeField ? `${ropeField}.` : 'rope_scaling.');
  const ropeType = rope.obj['rope_type'] ?? rope.obj['type'];
  const yarn = ropeType === 'yarn';
  if (ropeType !== undefined && ropeType !== 'yarn' && ropeType !== 'default') {
    rope.fail('rope_type', `is ${JSON.stringify(ropeType)}; only "yarn" (or "default") RoPE is supported`);
  }
  const ropeTheta = r.has('rope_theta') ? r.num('rope_theta') : rope.num('rope_theta', 150000);

  // YaRN's base context: HF's computation uses rope_scaling.original_max_position_embeddings, the
  // reference uses initial_context_length; gpt-oss configs carry both with the same value.
  const initialContextLength = yarn && rope.has('original_max_position_embeddings')
    ? rope.num('original_max_position_embeddings')
    : r.num('initial_context_length', 4096);

  return {
    numLayers,
    numExperts: r.has('num_local_experts') ? r.num('num_local_experts') : r.num('num_experts'),
    expertsPerToken,
    vocabSize: r.num('vocab_size'),
    hiddenSize,
    intermediateSize: r.num('intermediate_size'),
    numHeads,
    numKvHeads: r.num('num_key_value_heads', numHeads),
    headDim: r.num('head_dim', hiddenSize / numHeads),
    slidingWindow: r.num('sliding_window'),
    layerTypes: parseLayerTypes(r, 'layer_types', numLayers),
    ropeTheta,
    // Without YaRN (factor 1) the same formulas reduce to plain RoPE with no concentration.
    ropeScalingFactor: yarn ? rope.num('factor') : 1,
    ropeNtkAlpha: yarn ? rope.num('beta_slow', 1) : 1,
    ropeNtkBeta: yarn ? rope.num('beta_fast', 32) : 32,
    // transformers defaults truncate to true when the key is absent.
    ropeTruncate: yarn ? rope.bool('truncate', true) : false,
    initialContextLength,
    maxPositionEmbeddings: r.num('max_position_embeddings', 131072),
    swigluLimit: r.num('swiglu_limit', 7.0),
    rmsNormEps: r.num('rms_norm_eps', 1e-5),
  };
}

function parseOriginalConfig(r: FieldReader): Omit<ModelConfig, 'eosTokenIds'> {
  // The reference's ModelConfig has gpt-oss-120b defaults for every field; sizes are required
  // here anyway, so a truncated config cannot silently turn into a 120b shape.
  const numLayers = r.num('num_hidden_layers');
  return {
    numLayers,
    numExperts: r.num('num_experts'),
    expertsPerToken: r.num('experts_per_token'),
    vocabSize: r.num('vocab_size'),
    hiddenSize: r.num('hidden_size'),
    intermediateSize: r.num('intermediate_size'),
    numHeads: r.num('num_attention_heads'),
    numKvHeads: r.num('num_key_value_heads'),
    headDim: r.num('head_dim'),
    slidingWindow: r.num('sliding_window'),
    layerTypes: parseLayerTypes(r, 'layer_types', numLayers),
    ropeTheta: r.num('rope_theta', 150000),
    ropeScalingFactor: r.num('rope_scaling_factor', 32),
    ropeNtkAlpha: r.num('rope_ntk_alpha', 1),
    ropeNtkBeta: r.num('rope_ntk_beta', 32),
    ropeTruncate: r.bool('rope_truncate', false), // the reference never rounds the ramp bounds
    initialContextLength: r.num('initial_context_length', 4096),
    maxPositionEmbeddings: r.num('max_position_embeddings', 131072),
    swigluLimit: r.num('swiglu_limit', 7.0),
    rmsNormEps: r.num('rms_norm_eps', 1e-5),
  };
}

/** Checks the invariants the engine relies on; `names` maps fields to the source's vocabulary. */
export function validateModelConfig(c: ModelConfig, source: string, names: FieldNames = PRESET_FIELDS): ModelConfig {
  const fail = (k: keyof ModelConfig, msg: string): never => {
    throw new CheckpointError(`${source}: field "${names[k]}" ${msg}`);
  };
  const positiveInts: (keyof ModelConfig)[] = [
    'numLayers', 'numExperts', 'expertsPerToken', 'vocabSize', 'hiddenSize', 'intermediateSize',
    'numHeads', 'numKvHeads', 'headDim', 'slidingWindow', 'initialContextLength', 'maxPositionEmbeddings',
  ];
  for (const k of positiveInts) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) fail(k, `must be a positive integer, got ${JSON.stringify(v)}`);
  }
  const positiveReals: (keyof ModelConfig)[] = ['ropeTheta', 'ropeScalingFactor', 'ropeNtkAlpha', 'ropeNtkBeta', 'swigluLimit', 'rmsNormEps'];
  for (const k of positiveReals) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(k, `must be a positive number, got ${JSON.stringify(v)}`);
  }
  if (c.ropeScalingFactor < 1) fail('ropeScalingFactor', `must be ≥ 1, got ${c.ropeScalingFactor}`);
  if (typeof c.ropeTruncate !== 'boolean') fail('ropeTruncate', `must be true or false, got ${JSON.stringify(c.ropeTruncate)}`);
  // MXFP4 blocks run along the input dimension: hidden (mlp1) and intermediate (mlp2).
  if (c.hiddenSize % 32 !== 0) fail('hiddenSize', `(${c.hiddenSize}) must be a multiple of 32 (MXFP4 block size)`);
  if (c.intermediateSize % 32 !== 0) fail('intermediateSize', `(${c.intermediateSize}) must be a multiple of 32 (MXFP4 block size)`);
  // GPU matvecs read 8 bf16 (one vec4<u32>) at a time along rows of length hidden or nq·d.
  if ((c.numHeads * c.headDim) % 8 !== 0) {
    fail('numHeads', `× "${names.headDim}" (${c.numHeads}·${c.headDim}) must be a multiple of 8`);
  }
  if (c.headDim % 2 !== 0) fail('headDim', `(${c.headDim}) must be even (RoPE rotates half-dimension pairs)`);
  if (c.numHeads % c.numKvHeads !== 0) {
    fail('numKvHeads', `(${c.numKvHeads}) must divide "${names.numHeads}" (${c.numHeads})`);
  }
  if (c.expertsPerToken > c.numExperts) {
    fail('expertsPerToken', `(${c.expertsPerToken}) must not exceed "${names.numExperts}" (${c.numExperts})`);
  }
  if (!Array.isArray(c.layerTypes) || c.layerTypes.length !== c.numLayers) {
    fail('layerTypes', `has ${Array.isArray(c.layerTypes) ? c.layerTypes.length : 'no'} entries, expected "${names.numLayers}" = ${c.numLayers}`);
  }
  c.layerTypes.forEach((t, i) => {
    if (t !== 'sliding' && t !== 'full') fail('layerTypes', `[${i}] must be 'sliding' or 'full', got ${JSON.stringify(t)}`);
  });
  if (!Array.isArray(c.eosTokenIds) || !c.eosTokenIds.every((x) => Number.isSafeInteger(x) && x >= 0)) {
    fail('eosTokenIds', `must be a list of token ids, got ${JSON.stringify(c.eosTokenIds)}`);
  }
  return c;
}

/**
 * Parses a config.json object of either dialect. `generationConfig` (the parsed
 * generation_config.json, if any) contributes extra eos ids.
 */
export function parseModelConfig(
  json: unknown,
  source: string,
  generationConfig?: { json: unknown; source: string },
): { config: ModelConfig; dialect: ConfigDialect } {
  if (!isObject(json)) throw new CheckpointError(`${source}: config must be a JSON object`);
  const dialect = detectConfigDialect(json);
  if (!dialect) {
    throw new CheckpointError(
      `${source}: neither a Hugging Face config (no "model_type"/"architectures") nor an original gpt-oss config (needs "num_experts", "experts_per_token", "num_hidden_layers")`,
    );
  }
  const r = new FieldReader(source, json);
  const base = dialect === 'hf' ? parseHfConfig(r) : parseOriginalConfig(r);
  const eos = r.ids('eos_token_id');
  if (generationConfig && isObject(generationConfig.json)) {
    for (const id of new FieldReader(generationConfig.source, generationConfig.json).ids('eos_token_id')) {
      if (!eos.includes(id)) eos.push(id);
    }
  }
  const config = validateModelConfig({ ...base, eosTokenIds: [...new Set(eos)] }, source, dialect === 'hf' ? HF_FIELDS : ORIGINAL_FIELDS);
  return { config, dialect };
}

/** Reads and parses a JSON file; errors name the file. */
export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new CheckpointError(`${path}: cannot read (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** Reads `dir/config.json` (and `dir/generation_config.json` when present). */
export async function loadModelConfig(dir: string): Promise<{ config: ModelConfig; dialect: ConfigDialect; path: string }> {
  const path = join(dir, 'config.json');
  const json = await readJsonFile(path);
  const genPath = join(dir, 'generation_config.json');
  let gen: { json: unknown; source: string } | undefined;
  try {
    gen = { json: JSON.parse(await readFile(genPath, 'utf8')), source: genPath };
  } catch (e) {
    // Absent is normal; present but broken is the user's problem to hear about.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new CheckpointError(`${genPath}: cannot parse (${(e as Error).message})`);
    }
  }
  return { ...parseModelConfig(json, path, gen), path };
}

/**
 * A ModelConfig from a plain object (synthetic models, tests). Missing optional fields get the
 * gpt-oss defaults; sizes are required.
 */
export function configFromPreset(
  obj: Pick<ModelConfig,
    'numLayers' | 'numExperts' | 'expertsPerToken' | 'vocabSize' | 'hiddenSize' | 'intermediateSize' |
    'numHeads' | 'numKvHeads' | 'headDim' | 'slidingWindow'> & Partial<ModelConfig>,
  source = 'preset',
): ModelConfig {
  const c: ModelConfig = {
    layerTypes: alternatingLayerTypes(obj.numLayers),
    ropeTheta: 150000, ropeScalingFactor: 32, ropeNtkAlpha: 1, ropeNtkBeta: 32, ropeTruncate: false,
    initialContextLength: 4096, maxPositionEmbeddings: 131072, swigluLimit: 7.0, rmsNormEps: 1e-5,
    eosTokenIds: [],
    ...obj,
  };
  return validateModelConfig({ ...c, layerTypes: [...c.layerTypes], eosTokenIds: [...c.eosTokenIds] }, source);
}
