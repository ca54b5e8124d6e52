// The up-front memory check of a server with several models: every model's memory plan (the
// engine's own, before anything is allocated) against the GPU's memory. WebGPU does not tell how
// much memory an adapter has, so the size comes from --gpu-memory, else from nvidia-smi.
import { spawnSync } from 'node:child_process';
import type { MemoryPlan } from '../engine/engine.js';

const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };

/** "80GB", "79.6 GiB", "85899345920" -> bytes; null when it is not a size. */
export function parseByteSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$/i.exec(text);
  if (!m) return null;
  const bytes = Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()]!;
  return Number.isFinite(bytes) && bytes > 0 ? Math.round(bytes) : null;
}

/** Memory of the smallest NVIDIA GPU nvidia-smi lists, or null (no NVIDIA driver, no tool). */
export function detectGpuMemory(): number | null {
  const r = spawnSync('nvidia-smi', ['--query-gpu=memory.total', '--format=csv,noheader,nounits'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0 || typeof r.stdout !== 'string') return null;
  const mib = r.stdout.split('\n').map((l) => Number(l.trim())).filter((n) => Number.isFinite(n) && n > 0);
  return mib.length ? Math.min(...mib) * 2 ** 20 : null;
}

export const formatBytes = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : `${(n / 1e6).toFixed(1)} MB`);

/** Throws, with every model's numbers, when the plans together need more than `budget` bytes. */
export function checkPlansFit(plans: ReadonlyArray<{ name: string; spec: string; plan: MemoryPlan }>, budget: number): void {
  const total = plans.reduce((n, p) => n + p.plan.total, 0);
  if (total <= budget) return;
  const each = plans.map(
    ({ name, spec, plan: p }) =>
      `${name} (${spec}, context ${p.context}) needs ${formatBytes(p.total)}: weights ${formatBytes(p.weights)}, ` +
      `KV cache ${formatBytes(p.kv)}, other ${formatBytes(p.total - p.weights - p.kv)}`,
  );
  throw new Error(
    `the models do not fit in ${formatBytes(budget)} of GPU memory: ${each.join('; ')}; together ${formatBytes(total)}. ` +
      'Serve fewer or smaller models, lower --context, or set --gpu-memory if that size is wrong.',
  );
}
