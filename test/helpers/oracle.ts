// The repository's and ../shared's paths, and access to ../shared/oracle: manifests and
// reference outputs of the public tiny models. Every test takes these paths from here.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile } from '../../src/model/safetensors.js';

export const REPO_ROOT = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
export const SHARED = resolve(REPO_ROOT, '..', 'shared');
export const ORACLE = join(SHARED, 'oracle');
/** The oracle models: every folder of ../shared/oracle with a manifest.json, sorted. */
export const ORACLE_MODELS: readonly string[] = readdirSync(ORACLE)
  .filter((m) => {
    try {
      return statSync(join(ORACLE, m, 'manifest.json')).isFile();
    } catch {
      return false;
    }
  })
  .sort();

export interface Manifest {
  prompt_ids: number[];
  generated_ids: number[];
  shapes: Record<string, unknown>;
  tolerances: { f32: Record<string, number | string>; f16: Record<string, number | string> };
  mxfp4_check?: { layer: number; expert: number };
  rope?: { official_f32_abs_err_at_listed_positions: number[] };
  [field: string]: unknown;
}

export function manifest(model: string): Manifest {
  return JSON.parse(readFileSync(join(ORACLE, model, 'manifest.json'), 'utf8')) as Manifest;
}

export async function referenceTensors(model: string): Promise<Map<string, { shape: number[]; data: Float32Array | Int32Array }>> {
  const f = await SafetensorsFile.open(join(ORACLE, model, 'reference.safetensors'));
  const out = new Map<string, { shape: number[]; data: Float32Array | Int32Array }>();
  try {
    for (const t of f.tensors.values()) {
      const bytes = await f.readTensorBytes(t);
      const copy = bytes.slice().buffer;
      out.set(t.name, { shape: t.shape, data: t.dtype === 'I32' ? new Int32Array(copy) : new Float32Array(copy) });
    }
  } finally {
    await f.close();
  }
  return out;
}
