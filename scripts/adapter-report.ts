// Adapter report: what WebGPU (Dawn through the `webgpu` addon) offers on this machine, once with
// no Dawn toggles and once with the toggles the engine creates its device with (dawnToggles), so a
// GPU run shows which limits, features and subgroup-matrix configs each toggle unlocks.
//
// Independent of the CLI (it imports only dawnToggles from the engine). The bundle ships it as
// app/adapter-report.mjs, started with `run.sh adapter-report [--compact] [--no-device]`; in the
// repository, bundle it first (npm run bundle) or build it the same way with esbuild.
//
// Output: one JSON object on stdout, see AdapterReport below. Exit status 0 when at least one
// configuration gave an adapter, 1 otherwise.

import { dawnToggles } from '../src/gpu/device.js';

interface GpuEntry {
  requestAdapter(o?: GPURequestAdapterOptions): Promise<GPUAdapter | null>;
  wgslLanguageFeatures?: ReadonlySet<string>;
}

interface ConfigReport {
  name: string;
  toggles: string[];
  wgsl_language_features?: string[];
  adapter?: {
    info: Record<string, unknown>;
    features: string[];
    limits: Record<string, number>;
  } | null;
  device?: {
    features: string[];
    limits: Record<string, number>;
    /** A 64-element compute dispatch read back correctly (and subgroupAdd, when offered). */
    compute_ok: boolean;
    subgroup_add_ok?: boolean;
    error?: string;
  };
  error?: string;
  ms: number;
}

export interface AdapterReport {
  runtime: { node?: string; deno?: string; platform: string; arch: string };
  env: Record<string, string | null>;
  configs: ConfigReport[];
}

// The create() result owns the Dawn instance; keep every one reachable until exit (kernels.md 3.4).
const pinned: unknown[] = [];

/** Every readable property of a Dawn object (they are prototype getters, not own properties). */
function plain(obj: object | undefined | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!obj) return out;
  const keys = new Set<string>();
  for (let p: object | null = obj; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    for (const k of Object.getOwnPropertyNames(p)) keys.add(k);
  }
  for (const k in obj) keys.add(k);
  for (const k of [...keys].sort()) {
    if (k === 'constructor' || k.startsWith('__')) continue;
    let v: unknown;
    try {
      v = (obj as Record<string, unknown>)[k];
    } catch {
      continue;
    }
    if (typeof v === 'function') continue;
    out[k] = toJson(v);
  }
  return out;
}

function toJson(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return typeof v === 'bigint' ? Number(v) : v;
  if (Array.isArray(v)) return v.map(toJson);
  if (v instanceof Set) return [...v].map(toJson).sort();
  return plain(v);
}

function numbers(obj: object): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(plain(obj))) if (typeof v === 'number') out[k] = v;
  return out;
}

const COMPUTE = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) {
  data[id.x] = data[id.x] * 2u + 1u;
}`;

const SUBGROUP_ADD = /* wgsl */ `
enable subgroups;
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u, @builtin(subgroup_size) sg: u32) {
  data[id.x] = select(0u, 1u, subgroupAdd(1u) == sg);
}`;

async function runKernel(device: GPUDevice, code: string, input: Uint32Array): Promise<Uint32Array> {
  const usage = (globalThis as unknown as { GPUBufferUsage: Record<string, number> }).GPUBufferUsage;
  const mapMode = (globalThis as unknown as { GPUMapMode: Record<string, number> }).GPUMapMode;
  const buf = device.createBuffer({ size: input.byteLength, usage: usage.STORAGE! | usage.COPY_SRC! | usage.COPY_DST! });
  const read = device.createBuffer({ size: input.byteLength, usage: usage.MAP_READ! | usage.COPY_DST! });
  device.queue.writeBuffer(buf, 0, input);
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ code });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bg);
  pass.dispatchWorkgroups(Math.ceil(input.length / 64));
  pass.end();
  enc.copyBufferToBuffer(buf, 0, read, 0, input.byteLength);
  device.queue.submit([enc.finish()]);
  const err = await device.popErrorScope();
  if (err) throw new Error(err.message);
  await read.mapAsync(mapMode.READ!);
  const out = new Uint32Array(read.getMappedRange().slice(0));
  read.unmap();
  buf.destroy();
  read.destroy();
  return out;
}

async function probeDevice(adapter: GPUAdapter): Promise<NonNullable<ConfigReport['device']>> {
  const requiredLimits: Record<string, number> = {};
  for (const [k, v] of Object.entries(numbers(adapter.limits))) requiredLimits[k] = v;
  const requiredFeatures = [...adapter.features] as GPUFeatureName[];
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const report: NonNullable<ConfigReport['device']> = {
    features: [...device.features].sort(),
    limits: numbers(device.limits),
    compute_ok: false,
  };
  try {
    const input = Uint32Array.from({ length: 256 }, (_, i) => i);
    const out = await runKernel(device, COMPUTE, input);
    report.compute_ok = out.every((v, i) => v === i * 2 + 1);
    if (device.features.has('subgroups')) {
      const sg = await runKernel(device, SUBGROUP_ADD, new Uint32Array(256));
      report.subgroup_add_ok = sg.every((v) => v === 1);
    }
  } catch (e) {
    report.error = (e as Error).message;
  } finally {
    device.destroy();
  }
  return report;
}

async function reportConfig(
  create: (flags: string[]) => GpuEntry,
  name: string,
  toggles: string[],
  withDevice: boolean,
): Promise<ConfigReport> {
  const t0 = performance.now();
  const r: ConfigReport = { name, toggles, ms: 0 };
  try {
    const gpu = create(toggles);
    pinned.push(gpu);
    if (gpu.wgslLanguageFeatures) r.wgsl_language_features = [...gpu.wgslLanguageFeatures].sort();
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    pinned.push(adapter);
    if (!adapter) {
      r.adapter = null;
    } else {
      r.adapter = {
        info: plain(adapter.info),
        features: [...adapter.features].sort(),
        limits: numbers(adapter.limits),
      };
      if (withDevice) r.device = await probeDevice(adapter);
    }
  } catch (e) {
    r.error = (e as Error).stack ?? String(e);
  }
  r.ms = Math.round(performance.now() - t0);
  return r;
}

async function main(argv: string[]): Promise<number> {
  const compact = argv.includes('--compact');
  const withDevice = !argv.includes('--no-device');
  const unknown = argv.filter((a) => a !== '--compact' && a !== '--no-device');
  if (unknown.length) {
    console.error(`adapter-report: unknown argument ${unknown[0]}\nusage: adapter-report [--compact] [--no-device]`);
    return 2;
  }
  const proc = (globalThis as { process?: NodeJS.Process }).process;
  const deno = (globalThis as { Deno?: { version?: { deno?: string } } }).Deno;
  const env = proc?.env ?? {};
  const report: AdapterReport = {
    runtime: {
      ...(deno?.version?.deno ? { deno: deno.version.deno } : { node: proc?.versions?.node }),
      platform: proc?.platform ?? 'unknown',
      arch: proc?.arch ?? 'unknown',
    },
    env: Object.fromEntries(
      ['VK_DRIVER_FILES', 'VK_ICD_FILENAMES', 'VK_ADD_DRIVER_FILES', 'LD_LIBRARY_PATH', 'GPT_OSS_WEBGPU_TOGGLES'].map((k) => [k, env[k] ?? null]),
    ),
    configs: [],
  };
  let mod: { create: (flags: string[]) => GpuEntry; globals: Record<string, unknown> };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch (e) {
    console.log(JSON.stringify({ ...report, error: `cannot load the webgpu addon: ${(e as Error).message}` }, null, compact ? 0 : 2));
    return 1;
  }
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  report.configs.push(await reportConfig(mod.create, 'no-toggles', [], withDevice));
  report.configs.push(await reportConfig(mod.create, 'engine-toggles', dawnToggles({}), withDevice));
  console.log(JSON.stringify(report, null, compact ? 0 : 2));
  return report.configs.some((c) => c.adapter) ? 0 : 1;
}

main(((globalThis as { process?: NodeJS.Process }).process?.argv ?? []).slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`adapter-report: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  },
);
