// Loads one-kernel-per-file WGSL from shaders/, resolves `#if FLAG / #else / #endif` blocks (the
// only preprocessing: subgroup and portable reductions live side by side in one file), checks each
// kernel's uniform struct against its host declaration (kernel-params.ts), and caches compute
// pipelines so each (kernel, flags, constants) is compiled once per device.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Gpu } from './device.js';
import { bindGroup, readBuffer, storageBuffer } from './buffers.js';
import { KERNEL_PARAMS } from './kernel-params.js';
import { checkParams, wgslUniformStructs, type ParamsDecl } from './params.js';

function shaderDir(): string {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  if (env?.GPT_OSS_WEBGPU_SHADERS) return env.GPT_OSS_WEBGPU_SHADERS;
  // src/gpu/shaders.ts and dist/gpu/shaders.js both sit two levels below the package root.
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shaders');
}

const sourceCache = new Map<string, string>();

export function readShader(name: string): string {
  let src = sourceCache.get(name);
  if (src === undefined) {
    const file = join(shaderDir(), `${name}.wgsl`);
    try {
      src = readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`shader ${name}: cannot read ${file}: ${(e as Error).message}`);
    }
    sourceCache.set(name, src);
  }
  return src;
}

/** Inlines `#include lib/name` lines (shared helper functions, not kernels) once each. */
export function withIncludes(name: string, seen = new Set<string>()): string {
  return readShader(name)
    .split('\n')
    .map((line) => {
      const m = /^#include\s+([A-Za-z0-9_/]+)\s*$/.exec(line.trim());
      if (!m) return line;
      if (seen.has(m[1]!)) return '';
      seen.add(m[1]!);
      return withIncludes(m[1]!, seen);
    })
    .join('\n');
}

/** Keeps lines whose enclosing `#if FLAG` conditions hold; `#if !FLAG` negates. */
export function preprocess(src: string, flags: ReadonlySet<string>, name = 'shader'): string {
  const out: string[] = [];
  const stack: { active: boolean; parentActive: boolean }[] = [];
  let active = true;
  src.split('\n').forEach((line, i) => {
    const t = line.trim();
    const m = /^#if\s+(!?)([A-Za-z_][A-Za-z0-9_]*)\s*$/.exec(t);
    if (m) {
      const cond = flags.has(m[2]!) !== (m[1] === '!');
      stack.push({ active: cond, parentActive: active });
      active = active && cond;
      out.push('');
      return;
    }
    if (t === '#else' || t === '#endif') {
      const top = stack.at(-1);
      if (!top) throw new Error(`${name}.wgsl:${i + 1}: ${t} without #if`);
      if (t === '#else') {
        top.active = !top.active;
        active = top.parentActive && top.active;
      } else {
        stack.pop();
        active = top.parentActive;
      }
      out.push('');
      return;
    }
    if (t.startsWith('#')) throw new Error(`${name}.wgsl:${i + 1}: unknown directive ${t}`);
    out.push(active ? line : '');
  });
  if (stack.length) throw new Error(`${name}.wgsl: unterminated #if`);
  return out.join('\n');
}

export interface PipelineSpec {
  shader: string;
  /** Compile-time `const NAME: u32` values the kernel expects (shapes, workgroup sizes). */
  defines?: Record<string, number>;
  /**
   * Extra preprocessor flags (SUBGROUPS is added when the device path uses subgroups). F16 adds
   * `enable f16`; SGMAT adds those of the subgroup-matrix kernels (f16, subgroups, the extension).
   */
  flags?: string[];
  /** The kernel's uniform parameters (default: its entry in KERNEL_PARAMS). */
  params?: ParamsDecl;
}

/** The uniform structs the host writes as plain words rather than through a declaration. */
const RAW_UNIFORMS = new Set(['Step']);

/**
 * Throws, naming the kernel and the field, when the kernel's uniform parameter struct and its
 * host declaration differ, or when a uniform struct of the kernel has no declaration.
 */
export function checkKernelParams(spec: PipelineSpec, source: string): void {
  const decl = spec.params ?? (KERNEL_PARAMS as Record<string, ParamsDecl | undefined>)[spec.shader];
  const structs = wgslUniformStructs(source).filter((s) => !RAW_UNIFORMS.has(s));
  for (const s of structs) {
    if (s !== decl?.struct) throw new Error(`kernel ${spec.shader}: uniform struct ${s} has no host declaration (src/gpu/kernel-params.ts)`);
  }
  if (!decl) return;
  if (!structs.includes(decl.struct)) throw new Error(`kernel ${spec.shader}: no var<uniform> of the declared struct ${decl.struct}`);
  checkParams(spec.shader, source, decl);
}

export class ShaderCache {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  /** Pipelines created so far; the engine checks this stays flat during decode. */
  created = 0;
  private readonly pending: Promise<void>[] = [];

  constructor(
    readonly gpu: Gpu,
    readonly useSubgroups = gpu.features.subgroups,
  ) {}

  flagsFor(spec: PipelineSpec): Set<string> {
    const flags = new Set(spec.flags ?? []);
    if (this.useSubgroups) flags.add('SUBGROUPS');
    return flags;
  }

  source(spec: PipelineSpec): string {
    const flags = this.flagsFor(spec);
    const body = preprocess(withIncludes(spec.shader), flags, spec.shader);
    const head: string[] = [];
    const sgmat = flags.has('SGMAT');
    if (flags.has('F16') || sgmat) head.push('enable f16;');
    if (flags.has('SUBGROUPS') || sgmat) head.push('enable subgroups;');
    if (flags.has('ATOMIC_VEC2U')) head.push('enable atomic_vec2u_min_max;');
    if (sgmat) {
      head.push('enable chromium_experimental_subgroup_matrix;');
      // the fragment ops are indexed by warp = lid / SGW, uniform per subgroup by construction
      // (lib/sgmat.wgsl) but not provably so to Tint
      head.push('diagnostic(off, chromium.subgroup_matrix_uniformity);');
    }
    // Scratch arrays for subgroup partials are sized with the smallest subgroup the adapter uses.
    const defines = { SG_MIN: Math.max(1, this.gpu.subgroupMinSize), ...spec.defines };
    for (const [k, v] of Object.entries(defines)) {
      if (!Number.isInteger(v) || v < 0) throw new Error(`shader ${spec.shader}: define ${k}=${v} is not a u32`);
      head.push(`const ${k}: u32 = ${v}u;`);
    }
    return head.join('\n') + '\n' + body;
  }

  pipeline(spec: PipelineSpec): GPUComputePipeline {
    const flags = [...this.flagsFor(spec)].sort().join(',');
    const consts = Object.entries(spec.defines ?? {})
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const key = `${spec.shader}|${flags}|${consts}`;
    let p = this.pipelines.get(key);
    if (p) return p;
    const code = this.source(spec);
    checkKernelParams(spec, code);
    const device = this.gpu.device;
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ label: spec.shader, code });
    p = device.createComputePipeline({ label: key, layout: 'auto', compute: { module, entryPoint: 'main' } });
    const built = device.popErrorScope().then(async (err) => {
        if (!err) return;
        const info = await module.getCompilationInfo();
        const text = info.messages
          .filter((m) => m.type === 'error')
          .map((m) => `${spec.shader}.wgsl:${m.lineNum}:${m.linePos}: ${m.message}`)
          .join('\n');
        throw new Error(`kernel ${key} failed to build:\n${text || err.message}`);
    });
    built.catch(() => {}); // reported by validate(), not as an unhandled rejection
    this.pending.push(built);
    this.pipelines.set(key, p);
    this.created++;
    return p;
  }

  /** Resolves once every pipeline created so far compiled; throws naming the first that failed. */
  async validate(): Promise<void> {
    const list = this.pending.splice(0);
    await Promise.all(list);
  }
}

/**
 * Whether the subgroup reductions' layout assumption holds on this adapter (see lib/reduce.wgsl).
 * False when the adapter has no subgroups or breaks the assumption; kernels then use the
 * portable workgroup-memory path.
 */
export async function subgroupLayoutHolds(gpu: Gpu): Promise<boolean> {
  if (!gpu.features.subgroups) return false;
  const cache = new ShaderCache(gpu, true);
  const WG = 256;
  const groups = 4;
  const pipeline = cache.pipeline({ shader: 'subgroup_layout_check', defines: { WG } });
  await cache.validate();
  const out = storageBuffer(gpu, WG * groups * 4, 'subgroup_layout_check');
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup(gpu, pipeline, [out]));
  pass.dispatchWorkgroups(groups);
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
  const flags = new Uint32Array(await readBuffer(gpu, out));
  out.destroy();
  return flags.every((f) => f === 1);
}
