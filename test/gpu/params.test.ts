// Kernel parameters declared once on the host (src/gpu/kernel-params.ts) against the WGSL structs:
// every kernel's declaration matches its struct under every flag, a mismatch in count, order, name
// or type fails the pipeline build naming the kernel and the field, and the packing follows the
// declaration's order whatever order the values are written in.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { KERNEL_PARAMS } from '../../src/gpu/kernel-params.js';
import { declareParams, packParams } from '../../src/gpu/params.js';
import { checkKernelParams, preprocess, ShaderCache, withIncludes } from '../../src/gpu/shaders.js';
import { testGpu } from '../helpers/gpu.js';

const SHADERS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shaders');
const kernels = readdirSync(SHADERS)
  .filter((f) => f.endsWith('.wgsl'))
  .map((f) => f.slice(0, -'.wgsl'.length));

/** The flags a kernel's source tests (#if NAME / #if !NAME, its libraries included). */
function flagsOf(src: string): string[] {
  return [...new Set([...src.matchAll(/^\s*#if\s+!?([A-Za-z_][A-Za-z0-9_]*)/gm)].map((m) => m[1]!))];
}

describe('kernel params declarations', () => {
  it('every kernel with a uniform struct has a declaration that matches it under every flag', () => {
    expect(kernels.length).toBeGreaterThan(15);
    const declared = new Set<string>();
    for (const k of kernels) {
      const src = withIncludes(k);
      const flags = flagsOf(src);
      expect(flags.length, k).toBeLessThanOrEqual(8);
      for (let bits = 0; bits < 1 << flags.length; bits++) {
        const on = new Set(flags.filter((_, i) => bits & (1 << i)));
        // throws for a missing declaration or a mismatch
        checkKernelParams({ shader: k }, preprocess(src, on, k));
      }
      if (k in KERNEL_PARAMS) declared.add(k);
    }
    // no declaration without its kernel file
    expect(Object.keys(KERNEL_PARAMS).filter((k) => !declared.has(k))).toEqual([]);
    // and the kernels without one have no parameter struct at all
    expect(kernels.filter((k) => !declared.has(k)).sort()).toEqual(['subgroup_layout_check']);
  });

  it('a mismatched declaration fails the pipeline build, naming the kernel and the field', async () => {
    const gpu = await testGpu();
    const build = (fields: Record<string, 'u32' | 'i32' | 'f32'>, struct?: string) =>
      new ShaderCache(gpu, false).pipeline({ shader: 'rope_kv_write', defines: { WG: 64, D: 64, PAGE: 16 }, params: declareParams(fields, struct) });
    // the right one builds
    expect(() => build({ nq: 'u32', nkv: 'u32', max_blocks: 'u32' })).not.toThrow();
    // order
    expect(() => build({ nq: 'u32', max_blocks: 'u32', nkv: 'u32' })).toThrow(
      'kernel rope_kv_write: Params field 1 is nkv: u32 in WGSL but max_blocks: u32 in the host declaration',
    );
    // name
    expect(() => build({ nq: 'u32', nkv: 'u32', maxBlocks: 'u32' })).toThrow(/^kernel rope_kv_write: Params field 2 is max_blocks: u32 in WGSL but maxBlocks: u32/);
    // type
    expect(() => build({ nq: 'u32', nkv: 'f32', max_blocks: 'u32' })).toThrow(/^kernel rope_kv_write: Params field 1 is nkv: u32 in WGSL but nkv: f32/);
    // count, both ways
    expect(() => build({ nq: 'u32', nkv: 'u32' })).toThrow(/^kernel rope_kv_write: Params field 2 \(max_blocks: u32\) is missing from the host declaration/);
    expect(() => build({ nq: 'u32', nkv: 'u32', max_blocks: 'u32', eps: 'f32' })).toThrow(
      /^kernel rope_kv_write: Params field 3 \(eps: f32\) is declared on the host but not in WGSL/,
    );
    // a struct the kernel does not have
    expect(() => build({ nq: 'u32' }, 'RopeParams')).toThrow(/^kernel rope_kv_write: uniform struct Params has no host declaration/);
  });

  it('a uniform struct without a declaration is rejected', () => {
    const src = 'struct Extra {\n  a: u32,\n}\n@group(0) @binding(0) var<uniform> q: Extra;\n';
    expect(() => checkKernelParams({ shader: 'made_up' }, src)).toThrow('kernel made_up: uniform struct Extra has no host declaration');
  });

  it('values are packed in the declaration order, checked against their types', () => {
    const words = packParams(KERNEL_PARAMS.attention, {
      scale: 0.125,
      count_idx: 7,
      section: 6,
      max_blocks: 5,
      window: 4,
      sliding: 3,
      nkv: 2,
      nq: 1,
    });
    expect(words.length).toBe(8);
    expect([...words.subarray(0, 7)]).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(new Float32Array(words.buffer)[7]).toBe(0.125);
    // padded to 16 bytes
    expect(packParams(KERNEL_PARAMS.router_norm, { e: 3, eps: 1e-5 }).length).toBe(4);
    expect(() => packParams(KERNEL_PARAMS.topk_softmax, { e: -1, k: 4 })).toThrow('Params.e: u32 out of range: -1');
    expect(() => packParams(KERNEL_PARAMS.topk_softmax, { e: 32, k: 4.5 })).toThrow('Params.k: u32 out of range: 4.5');
    expect(() => packParams(KERNEL_PARAMS.topk_softmax, { e: 32, k: 4, kk: 1 } as never)).toThrow('Params: no field kk');
  });
});
