// Shared helpers for the model-loading tests: temp folders, and rewriting an oracle checkpoint
// (renamed/dropped/reshaped tensors, sharding) with our own writer. Paths and manifests come from
// test/helpers/oracle.ts.
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../../src/model/safetensors.js';
import { ORACLE } from '../helpers/oracle.js';

export { ORACLE, ORACLE_MODELS } from '../helpers/oracle.js';

const temps: string[] = [];

export async function tempDir(tag = 'model'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), `gptoss-${tag}-`));
  temps.push(d);
  return d;
}

/** Call from afterAll. */
export async function removeTempDirs(): Promise<void> {
  await Promise.all(temps.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

/** Every tensor of a safetensors file, in memory (oracle files are a few MB). */
export async function readAllTensors(path: string): Promise<{ tensors: TensorToWrite[]; metadata: Record<string, string> }> {
  const f = await SafetensorsFile.open(path);
  try {
    const tensors: TensorToWrite[] = [];
    for (const t of f.tensors.values()) {
      tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await f.readTensorBytes(t) });
    }
    return { tensors, metadata: { ...f.metadata } };
  } finally {
    await f.close();
  }
}

export interface CopyOptions {
  /** Edit the tensor list before writing (drop, rename, reshape). */
  tensors?: (t: TensorToWrite[]) => TensorToWrite[];
  /** Edit config.json. */
  config?: (c: Record<string, unknown>) => Record<string, unknown>;
  /** Split into shards: returns the shard index (0-based) of each tensor name; writes an index. */
  shard?: { count: number; of: (name: string, i: number) => number };
}

/** Copies oracle `<model>/<layout>` into `dst` (created), rewriting the weights with our writer. */
export async function copyCheckpoint(model: string, layout: 'hf' | 'original', dst: string, opts: CopyOptions = {}): Promise<string> {
  const src = join(ORACLE, model, layout);
  await mkdir(dst, { recursive: true });
  let cfg = JSON.parse(await readFile(join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
  if (opts.config) cfg = opts.config(cfg);
  await writeFile(join(dst, 'config.json'), JSON.stringify(cfg, null, 2));
  const all = await readAllTensors(join(src, 'model.safetensors'));
  const tensors = opts.tensors ? opts.tensors(all.tensors) : all.tensors;
  if (!opts.shard) {
    await writeSafetensors(join(dst, 'model.safetensors'), tensors, all.metadata);
    return dst;
  }
  const { count, of } = opts.shard;
  const name = (k: number) => `model-${String(k).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.safetensors`;
  const groups: TensorToWrite[][] = Array.from({ length: count }, () => []);
  tensors.forEach((t, i) => groups[of(t.name, i)]!.push(t));
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (let k = 0; k < count; k++) {
    await writeSafetensors(join(dst, name(k)), groups[k]!, all.metadata);
    for (const t of groups[k]!) {
      weightMap[t.name] = name(k);
      total += t.data.byteLength;
    }
  }
  await writeFile(join(dst, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  return dst;
}

/** Plain byte copy of a file, for corruption tests. */
export async function copyRaw(src: string, dst: string): Promise<void> {
  await mkdir(dirname(dst), { recursive: true });
  await copyFile(src, dst);
}

/** Writes a safetensors file with an arbitrary (possibly invalid) header text and data bytes. */
export async function writeRawSafetensors(path: string, headerText: string, data: Uint8Array = new Uint8Array(0)): Promise<void> {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  await writeFile(path, out);
}
