// A gpt-oss checkpoint folder (Hugging Face or OpenAI original layout, single file or sharded)
// seen through one canonical tensor map. A canonical tensor is a list of byte ranges in the files
// (HF q/k/v projections become one qkv tensor of three parts), so the engine streams every weight
// straight from disk to the GPU without caring which layout it came from.
import { readdir, stat } from 'node:fs/promises';
import { basename, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { loadModelConfig, readJsonFile, type ModelConfig } from './config.js';
import { bf16ToF32Array } from './mxfp4.js';
import {
  CheckpointError, DEFAULT_CHUNK_BYTES, SafetensorsFile, type Dtype, type TensorInfo,
} from './safetensors.js';

export type CheckpointLayout = 'hf' | 'original';

export interface TensorPart {
  /** Absolute path of the safetensors file. */
  file: string;
  /** Tensor name inside that file. */
  tensorName: string;
  /** Absolute byte range [begin, end) in the file. */
  begin: number;
  end: number;
}

export interface CanonicalTensor {
  name: string;
  dtype: string;
  shape: number[];
  byteLength: number;
  /** Concatenated in order, these ranges are the tensor's bytes (C-contiguous). */
  parts: TensorPart[];
}

/** What the checkpoint must hold for one canonical tensor. */
export interface TensorSpec {
  name: string;
  shape: number[];
  dtypes: readonly Dtype[];
  /** Source tensors per layout, concatenated along the first dimension. */
  sources: Record<CheckpointLayout, { name: string; shape: number[] }[]>;
}

const MATRIX: readonly Dtype[] = ['BF16'];
// Norms, sinks and biases are BF16 in every published checkpoint; F32 is accepted to be safe.
const VECTOR: readonly Dtype[] = ['BF16', 'F32'];
const BYTES: readonly Dtype[] = ['U8'];

/** Canonical tensor names, shapes, dtypes and sources, in file-independent order. */
export function expectedTensors(c: ModelConfig): TensorSpec[] {
  const { hiddenSize: H, vocabSize: V, numExperts: E, intermediateSize: I, headDim: d } = c;
  const nq = c.numHeads * d;
  const nkv = c.numKvHeads * d;
  const specs: TensorSpec[] = [];
  const add = (name: string, shape: number[], dtypes: readonly Dtype[], hf: string | [string, number[]][], original: string) => {
    specs.push({
      name, shape, dtypes,
      sources: {
        hf: typeof hf === 'string' ? [{ name: hf, shape }] : hf.map(([n, s]) => ({ name: n, shape: s })),
        original: [{ name: original, shape }],
      },
    });
  };
  add('embedding', [V, H], MATRIX, 'model.embed_tokens.weight', 'embedding.weight');
  for (let i = 0; i < c.numLayers; i++) {
    const L = `layers.${i}`;
    const h = `model.layers.${i}`;
    const o = `block.${i}`;
    add(`${L}.attn_norm`, [H], VECTOR, `${h}.input_layernorm.weight`, `${o}.attn.norm.scale`);
    add(`${L}.qkv.weight`, [nq + 2 * nkv, H], MATRIX, [
      [`${h}.self_attn.q_proj.weight`, [nq, H]],
      [`${h}.self_attn.k_proj.weight`, [nkv, H]],
      [`${h}.self_attn.v_proj.weight`, [nkv, H]],
    ], `${o}.attn.qkv.weight`);
    add(`${L}.qkv.bias`, [nq + 2 * nkv], VECTOR, [
      [`${h}.self_attn.q_proj.bias`, [nq]],
      [`${h}.self_attn.k_proj.bias`, [nkv]],
      [`${h}.self_attn.v_proj.bias`, [nkv]],
    ], `${o}.attn.qkv.bias`);
    add(`${L}.sinks`, [c.numHeads], VECTOR, `${h}.self_attn.sinks`, `${o}.attn.sinks`);
    add(`${L}.attn_out.weight`, [H, nq], MATRIX, `${h}.self_attn.o_proj.weight`, `${o}.attn.out.weight`);
    add(`${L}.attn_out.bias`, [H], VECTOR, `${h}.self_attn.o_proj.bias`, `${o}.attn.out.bias`);
    add(`${L}.mlp_norm`, [H], VECTOR, `${h}.post_attention_layernorm.weight`, `${o}.mlp.norm.scale`);
    add(`${L}.router.weight`, [E, H], MATRIX, `${h}.mlp.router.weight`, `${o}.mlp.gate.weight`);
    add(`${L}.router.bias`, [E], VECTOR, `${h}.mlp.router.bias`, `${o}.mlp.gate.bias`);
    add(`${L}.mlp1.blocks`, [E, 2 * I, H / 32, 16], BYTES, `${h}.mlp.experts.gate_up_proj_blocks`, `${o}.mlp.mlp1_weight.blocks`);
    add(`${L}.mlp1.scales`, [E, 2 * I, H / 32], BYTES, `${h}.mlp.experts.gate_up_proj_scales`, `${o}.mlp.mlp1_weight.scales`);
    add(`${L}.mlp1.bias`, [E, 2 * I], VECTOR, `${h}.mlp.experts.gate_up_proj_bias`, `${o}.mlp.mlp1_bias`);
    add(`${L}.mlp2.blocks`, [E, H, I / 32, 16], BYTES, `${h}.mlp.experts.down_proj_blocks`, `${o}.mlp.mlp2_weight.blocks`);
    add(`${L}.mlp2.scales`, [E, H, I / 32], BYTES, `${h}.mlp.experts.down_proj_scales`, `${o}.mlp.mlp2_weight.scales`);
    add(`${L}.mlp2.bias`, [E, H], VECTOR, `${h}.mlp.experts.down_proj_bias`, `${o}.mlp.mlp2_bias`);
  }
  add('norm', [H], VECTOR, 'model.norm.weight', 'norm.scale');
  add('unembedding', [V, H], MATRIX, 'lm_head.weight', 'unembedding.weight');
  return specs;
}

const LAYER_PREFIX: Record<CheckpointLayout, RegExp> = {
  hf: /^model\.layers\.(\d+)\./,
  original: /^block\.(\d+)\./,
};

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** The folder whose config.json describes the checkpoint (dir itself, or dir/hf, dir/original). */
async function findModelDir(dir: string): Promise<string> {
  // A real HF root also has original/: its own config.json wins, so the HF files are used.
  for (const d of [dir, join(dir, 'hf'), join(dir, 'original')]) {
    if (await isFile(join(d, 'config.json'))) return d;
  }
  throw new CheckpointError(
    `${dir}: no config.json (expected a Hugging Face model folder, an original/ folder, or a folder containing one)`,
  );
}

/** Safetensors files of a checkpoint folder: the index's shards, model.safetensors, or every *.safetensors. */
async function listWeightFiles(dir: string): Promise<{ files: string[]; weightMap?: Map<string, string>; indexPath?: string }> {
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (await isFile(indexPath)) {
    const json = await readJsonFile(indexPath);
    const wm = (json as { weight_map?: unknown } | null)?.weight_map;
    if (wm === null || typeof wm !== 'object' || Array.isArray(wm)) {
      throw new CheckpointError(`${indexPath}: "weight_map" must be an object {tensor name: file name}`);
    }
    const weightMap = new Map<string, string>();
    for (const [tensor, file] of Object.entries(wm as Record<string, unknown>)) {
      // Shard names come from a downloaded file: keep them inside the folder.
      if (typeof file !== 'string' || file === '' || isAbsolute(file) || normalize(file).split(sep).includes('..')) {
        throw new CheckpointError(`${indexPath}: tensor "${tensor}": shard ${JSON.stringify(file)} is not a file name inside ${dir}`);
      }
      weightMap.set(tensor, join(dir, file));
    }
    const files = [...new Set(weightMap.values())].sort();
    for (const f of files) {
      if (!(await isFile(f))) throw new CheckpointError(`${indexPath}: shard ${basename(f)} listed in "weight_map" does not exist in ${dir}`);
    }
    return { files, weightMap, indexPath };
  }
  const single = join(dir, 'model.safetensors');
  if (await isFile(single)) return { files: [single] };
  const files = (await readdir(dir)).filter((f) => f.endsWith('.safetensors')).sort().map((f) => join(dir, f));
  if (files.length === 0) throw new CheckpointError(`${dir}: no model.safetensors.index.json, model.safetensors or *.safetensors files`);
  return { files };
}

export class Checkpoint {
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly configPath: string,
    readonly config: ModelConfig,
    readonly layout: CheckpointLayout,
    readonly tensors: ReadonlyMap<string, CanonicalTensor>,
    /** File tensors that no canonical tensor uses (informational). */
    readonly unusedTensors: readonly string[],
    private readonly files: ReadonlyMap<string, SafetensorsFile>,
  ) {}

  /** Opens a checkpoint folder; see openCheckpoint. */
  static async open(dirIn: string): Promise<Checkpoint> {
    const dir = await findModelDir(resolve(dirIn));
    const { config, dialect, path: configPath } = await loadModelConfig(dir);
    const layout: CheckpointLayout = dialect;
    const { files: paths, weightMap, indexPath } = await listWeightFiles(dir);

    const files = new Map<string, SafetensorsFile>();
    try {
      for (const p of paths) files.set(p, await SafetensorsFile.open(p));
      const byName = new Map<string, TensorInfo>();
      for (const f of files.values()) {
        for (const t of f.tensors.values()) {
          const prev = byName.get(t.name);
          if (prev) throw new CheckpointError(`${t.file}: tensor "${t.name}" is also in ${prev.file}`);
          byName.set(t.name, t);
        }
      }
      if (weightMap) {
        for (const [name, file] of weightMap) {
          const t = byName.get(name);
          if (!t || t.file !== file) {
            throw new CheckpointError(
              `${indexPath}: tensor "${name}" is mapped to ${basename(file)}, but ${t ? `it is in ${basename(t.file)}` : 'no shard holds it'}`,
            );
          }
        }
      }

      const layerRe = LAYER_PREFIX[layout];
      for (const t of byName.values()) {
        const m = layerRe.exec(t.name);
        if (m && Number(m[1]) >= config.numLayers) {
          throw new CheckpointError(
            `${t.file}: tensor "${t.name}" belongs to layer ${m[1]}, but ${configPath} declares ${config.numLayers} layers`,
          );
        }
      }

      const used = new Set<string>();
      const tensors = new Map<string, CanonicalTensor>();
      const searched = paths.join(', ');
      for (const spec of expectedTensors(config)) {
        const parts: TensorPart[] = [];
        let dtype: Dtype | undefined;
        for (const src of spec.sources[layout]) {
          const t = byName.get(src.name);
          const what = () => `tensor "${src.name}" (canonical "${spec.name}")`;
          if (!t) {
            // HF dequantized (bf16) expert checkpoints name the weights without _blocks/_scales.
            const dense = src.name.replace(/_(blocks|scales)$/, '');
            const hint = dense !== src.name && byName.has(dense)
              ? `; found "${dense}" instead: dequantized (BF16) experts are not supported, use the MXFP4 checkpoint`
              : '';
            throw new CheckpointError(`${what()} is missing; searched ${searched}${hint}`);
          }
          if (fmt(t.shape) !== fmt(src.shape)) {
            throw new CheckpointError(
              `${t.file}: ${what()} has shape ${fmt(t.shape)}, expected ${fmt(src.shape)} from ${configPath}`,
            );
          }
          if (!spec.dtypes.includes(t.dtype)) {
            throw new CheckpointError(`${t.file}: ${what()} has dtype ${t.dtype}, expected ${spec.dtypes.join(' or ')}`);
          }
          if (dtype !== undefined && t.dtype !== dtype) {
            throw new CheckpointError(`${t.file}: ${what()} has dtype ${t.dtype}, but the other parts of "${spec.name}" are ${dtype}`);
          }
          dtype = t.dtype;
          used.add(t.name);
          parts.push({ file: t.file, tensorName: t.name, begin: t.begin, end: t.end });
        }
        const byteLength = parts.reduce((n, p) => n + (p.end - p.begin), 0);
        tensors.set(spec.name, { name: spec.name, dtype: dtype!, shape: spec.shape, byteLength, parts });
      }
      const unused = [...byName.keys()].filter((n) => !used.has(n)).sort();
      return new Checkpoint(dir, configPath, config, layout, tensors, unused, files);
    } catch (e) {
      await Promise.all([...files.values()].map((f) => f.close()));
      throw e;
    }
  }

  /** Absolute paths of the safetensors files this checkpoint reads. */
  get filePaths(): string[] {
    return [...this.files.keys()];
  }

  tensor(name: string): CanonicalTensor {
    const t = this.tensors.get(name);
    if (!t) throw new CheckpointError(`${this.dir}: no canonical tensor "${name}"`);
    return t;
  }

  private resolveTensor(t: CanonicalTensor | string): CanonicalTensor {
    return typeof t === 'string' ? this.tensor(t) : t;
  }

  /**
   * Streams a canonical tensor's bytes (or bytes [range.begin, range.end) of it) across its
   * parts, in fresh chunks of at most maxChunkBytes. Chunks never span two parts.
   */
  async *readChunks(
    tensor: CanonicalTensor | string,
    maxChunkBytes = DEFAULT_CHUNK_BYTES,
    range?: { begin: number; end: number },
  ): AsyncGenerator<Uint8Array> {
    const t = this.resolveTensor(tensor);
    if (this.closed) throw new CheckpointError(`${this.dir}: checkpoint already closed`);
    const b = range?.begin ?? 0;
    const e = range?.end ?? t.byteLength;
    if (!(Number.isSafeInteger(b) && Number.isSafeInteger(e) && 0 <= b && b <= e && e <= t.byteLength)) {
      throw new RangeError(`tensor "${t.name}": range [${b}, ${e}) outside [0, ${t.byteLength})`);
    }
    let off = 0; // offset of the current part within the canonical tensor
    for (const p of t.parts) {
      const len = p.end - p.begin;
      const lo = Math.max(b, off) - off;
      const hi = Math.min(e, off + len) - off;
      if (lo < hi) {
        const f = this.files.get(p.file);
        if (!f) throw new CheckpointError(`${p.file}: not part of checkpoint ${this.dir}`);
        yield* f.readTensorChunks(f.tensor(p.tensorName), maxChunkBytes, { begin: lo, end: hi });
      }
      off += len;
    }
  }

  /** The whole tensor (or a byte range of it) in one buffer: for small tensors and tests. */
  async readBytes(tensor: CanonicalTensor | string, range?: { begin: number; end: number }): Promise<Uint8Array> {
    const t = this.resolveTensor(tensor);
    const out = new Uint8Array((range?.end ?? t.byteLength) - (range?.begin ?? 0));
    let o = 0;
    for await (const chunk of this.readChunks(t, DEFAULT_CHUNK_BYTES, range)) {
      out.set(chunk, o);
      o += chunk.byteLength;
    }
    return out;
  }

  /** BF16 or F32 tensor → Float32Array (small tensors: norms, biases, sinks, tests). */
  async readF32(tensor: CanonicalTensor | string): Promise<Float32Array> {
    const t = this.resolveTensor(tensor);
    if (t.dtype !== 'BF16' && t.dtype !== 'F32') {
      throw new CheckpointError(`${t.parts[0]?.file ?? this.dir}: tensor "${t.name}" is ${t.dtype}; readF32 handles BF16 and F32`);
    }
    const bytes = await this.readBytes(t);
    // readBytes returns a fresh buffer at offset 0, so the F32 view is aligned.
    return t.dtype === 'BF16' ? bf16ToF32Array(bytes) : new Float32Array(bytes.buffer, 0, bytes.byteLength / 4);
  }

  /** Closes every file handle; idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.files.values()].map((f) => f.close()));
  }
}

/**
 * Opens a checkpoint folder: Hugging Face (config.json with model_type/architectures; a single
 * model.safetensors or shards listed in model.safetensors.index.json) or original (ModelConfig
 * config.json; model.safetensors or several *.safetensors). A folder without config.json but with
 * hf/ or original/ inside opens that. Every expected tensor is checked against the config.
 */
export function openCheckpoint(dir: string): Promise<Checkpoint> {
  return Checkpoint.open(dir);
}
