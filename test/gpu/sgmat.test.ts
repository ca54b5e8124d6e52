// The subgroup-matrix GEMMs (matmul_sgmat, moe_gemm_sgmat) through their emulated twins: the same
// WGSL, workgroup layout, f16 staging and epilogues, with the fragment ops as per-lane code (the
// real builtins cannot compile on lavapipe). Each case runs on fresh random data against a float64
// reference on f16-rounded operands, bound 2^-24 ((K + 2) sum|a b| + 2|ref|) per output (f32
// accumulation of exact f16 products; src/engine/sgmat-ref.ts), and against the f32 kernel it
// replaces, bound 2^-10 sum|a b| (the f16 rounding of activations). Outputs start as NaN poison
// with guard words after them (sgmat-check.ts checks every word outside the output is unchanged).
import { describe, expect, it } from 'vitest';
import { OpContext } from '../../src/engine/ops/context.js';
import { sgmatTwin, useSgmat } from '../../src/engine/ops/sgmat.js';
import { denseOps } from '../../src/engine/ops/dense.js';
import { allocateMoeGroup, moeGroupedOps } from '../../src/engine/ops/moe.js';
import { groupsOf, uploadBuffer } from '../../src/gpu/buffers.js';
import { denseCase, moeCase, mxfp4F16Case, sgmatSelfCheck, SELFTEST_CASES, type CaseResult, type DenseCase, type MoeCase } from '../../src/engine/sgmat-check.js';
import { f16Round } from '../../src/engine/sgmat-ref.js';
import { sgmatDense, sgmatMoe, sgmatMoeScalesExact, sgmatUnsupported, DENSE_TILED_MIN_ROWS, MOE_SMALLM_MAX_TOKENS } from '../../src/engine/dispatch-policy.js';
import { pickF16Config } from '../../src/gpu/device.js';
import { ShaderCache } from '../../src/gpu/shaders.js';
import { testGpu } from '../helpers/gpu.js';

const gpu = await testGpu();
const ctx = new OpContext(gpu, new ShaderCache(gpu, false));

function expectOk(r: CaseResult) {
  expect(r.problems, r.name).toEqual([]);
  for (const [k, v] of Object.entries(r.ref)) expect(v, `${r.name}: ${k}`).toBeLessThanOrEqual(1);
  expect(r.f32, `${r.name}: against the f32 kernel`).toBeLessThanOrEqual(1);
  expect(r.ok).toBe(true);
}

// fragments of NVIDIA's 16x16x16 over 32 lanes, and Apple/lavapipe-style 8x8x8 over 8 lanes
const twins = [sgmatTwin(), sgmatTwin({ M: 8, N: 8, K: 8, sgw: 8 })];

describe('matmul_sgmat twin', () => {
  const cases: DenseCase[] = [
    ...SELFTEST_CASES.dense,
    { tokens: 64, k: 32, n: 128, bias: true }, // exactly one tile
    { tokens: 1, k: 96, n: 9, accumulate: true }, // one row, one partial column tile
  ];
  for (const s of twins) {
    it.each(cases.map((c) => [JSON.stringify(c), c] as const))(`${s.M}x${s.N}x${s.K}/${s.sgw} lanes: %s`, async (_, c) => {
      expectOk(await denseCase(ctx, s, c));
    });
  }
});

describe('moe_gemm_sgmat twin (64-row tiles of moe_route)', () => {
  const cases: MoeCase[] = [
    // expert 0 takes every row (2 tiles), expert 1 one row, experts 2/3 odd counts, 4..7 none;
    // the second shard (experts 4..7) has no rows at all
    { experts: 8, topK: 2, hidden: 96, intermediate: 64, tokens: 71, routing: 'skewed', shards: 2 },
    { experts: 6, topK: 2, hidden: 64, intermediate: 32, tokens: 131, routing: 'skewed' }, // 3 tiles of expert 0
    { experts: 16, topK: 4, hidden: 160, intermediate: 96, tokens: 37, routing: 'random', shards: 3 },
    { experts: 32, topK: 4, hidden: 64, intermediate: 64, tokens: 1, routing: 'random' }, // 1 row each, most experts none
  ];
  it.each(cases.map((c) => [JSON.stringify(c), c] as const))('16x16x16/32 lanes: %s', async (_, c) => {
    expectOk(await moeCase(ctx, twins[0]!, c));
  });
  it('8x8x8/8 lanes: skewed routing', async () => {
    expectOk(await moeCase(ctx, twins[1]!, { experts: 8, topK: 2, hidden: 64, intermediate: 64, tokens: 71, routing: 'skewed' }));
  });
});

describe('MXFP4 decode to f16 with the scale folded in', () => {
  it('is bit-exact against the f32 decode and the CPU decoder for scale bytes 104..140', async () => {
    const r = await mxfp4F16Case(ctx, 104, 140);
    expect(r.mismatches).toEqual([]);
  });
  it('is not exact just outside: 103 loses 0.5 x 2^-24, 141 overflows 6 x 2^14', async () => {
    const lo = await mxfp4F16Case(ctx, 103, 103);
    const hi = await mxfp4F16Case(ctx, 141, 141);
    expect(lo.mismatches.length).toBeGreaterThan(0);
    expect(hi.mismatches.length).toBeGreaterThan(0);
    expect(sgmatMoeScalesExact(104, 140)).toBe(true);
    expect(sgmatMoeScalesExact(103, 120)).toBe(false);
    expect(sgmatMoeScalesExact(110, 141)).toBe(false);
  });
});

describe('f16 rounding of the references', () => {
  it('rounds to nearest, ties to even, with subnormals and overflow', () => {
    expect(f16Round(1 + 2 ** -11)).toBe(1);
    expect(f16Round(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);
    expect(f16Round(-(1 + 2 ** -10 + 2 ** -12))).toBe(-(1 + 2 ** -10));
    expect(f16Round(65519)).toBe(65504);
    expect(f16Round(65520)).toBe(Infinity);
    expect(f16Round(2 ** -25)).toBe(0);
    expect(f16Round(3 * 2 ** -26)).toBe(2 ** -24);
    expect(f16Round(5 * 2 ** -25)).toBe(2 ** -23);
    expect(f16Round(7 * 2 ** -25)).toBe(2 ** -22);
  });
});

describe('policy and the self-check', () => {
  it('uses the subgroup-matrix tiles exactly where the f32 tiled GEMMs ran, and only when usable', () => {
    expect(sgmatDense(DENSE_TILED_MIN_ROWS, true)).toBe(true);
    expect(sgmatDense(DENSE_TILED_MIN_ROWS - 1, true)).toBe(false);
    expect(sgmatDense(4096, false)).toBe(false);
    const shape = (tokens: number) => ({ tokens, rows: 0, samples: 0 });
    expect(sgmatMoe(shape(MOE_SMALLM_MAX_TOKENS + 1), true)).toBe(true);
    expect(sgmatMoe(shape(MOE_SMALLM_MAX_TOKENS), true)).toBe(false);
    expect(sgmatMoe(shape(4096), false)).toBe(false);
  });

  it('picks the f16 -> f32 config and names what rules an adapter out', () => {
    const cfg = (componentType: string, resultComponentType: string, M: number, N: number, K: number) => ({ componentType, resultComponentType, M, N, K });
    expect(pickF16Config([cfg('f16', 'f16', 16, 16, 16), cfg('f16', 'f32', 16, 8, 16), cfg('f16', 'f32', 16, 16, 16), cfg('i8', 'i32', 16, 16, 32)])).toEqual(cfg('f16', 'f32', 16, 16, 16));
    expect(pickF16Config([cfg('f16', 'f16', 16, 16, 16), cfg('f32', 'f32', 8, 8, 8)])).toBeNull();
    expect(pickF16Config([cfg('f16', 'f32', 12, 16, 16)])).toBeNull();
    const g = { subgroupMatrix: true, config: { M: 16, N: 16, K: 16 }, subgroupMinSize: 32, subgroupMaxSize: 32 };
    expect(sgmatUnsupported(g)).toBeNull();
    expect(sgmatUnsupported({ ...g, subgroupMatrix: false })).toMatch(/no chromium-experimental-subgroup-matrix/);
    expect(sgmatUnsupported({ ...g, config: null })).toMatch(/no f16 x f16 -> f32/);
    expect(sgmatUnsupported({ ...g, subgroupMinSize: 8 })).toMatch(/subgroup size varies/);
  });

  it('the op factories of an engine whose self-check passed build the subgroup-matrix variants', () => {
    const shaders = new ShaderCache(gpu, false);
    const c2 = new OpContext(gpu, shaders);
    const buf = uploadBuffer(c2.gpu, new Uint32Array(4096), 'dummy');
    const dense = () => denseOps(c2, { x: buf, w: buf, y: buf, k: 64, n: 96, label: 'mm' });
    const ran = (ops: ReturnType<typeof dense>, tokens: number) => ops.filter((o) => groupsOf(o, { tokens, rows: 0, samples: 0 })).map((o) => o.label);
    expect(ran(dense(), 70)).toEqual(['mm.tiled128']);
    useSgmat(shaders, { shape: sgmatTwin(), moe: false });
    expect(ran(dense(), 70)).toEqual(['mm.sgmat']);
    expect(ran(dense(), DENSE_TILED_MIN_ROWS)).toEqual(['mm.sgmat']);
    expect(ran(dense(), 3)).toEqual(['mm.rows4']);
    const group = allocateMoeGroup(c2.gpu, 4, { numExperts: 4, expertsPerToken: 2, hiddenSize: 32 });
    const ex = [{ first: 0, count: 4, mlp1Blocks: buf, mlp1Scales: buf, mlp1Bias: buf, mlp2Blocks: buf, mlp2Scales: buf, mlp2Bias: buf }];
    const moe = () => moeGroupedOps(c2, { xn: buf, routing: buf, h: buf, x: buf, group, experts: ex, hidden: 32, intermediate: 32, topK: 2, numExperts: 4, swigluLimit: 7, label: 'moe' });
    const big = MOE_SMALLM_MAX_TOKENS + 1;
    // scales outside the f16-exact range keep the experts on the f32 GEMM
    expect(ran(moe(), big)).toEqual(['moe.route', 'moe.mlp1_gemm', 'moe.mlp2_gemm', 'moe.gather']);
    useSgmat(shaders, { shape: sgmatTwin(), moe: true });
    expect(ran(moe(), big)).toEqual(['moe.route64', 'moe.mlp1_sgmat', 'moe.mlp2_sgmat', 'moe.gather']);
    expect(ran(moe(), MOE_SMALLM_MAX_TOKENS)).toEqual([]);
    c2.destroy();
  });

  it('runs the real kernels where the adapter has the feature, and says why not elsewhere', async () => {
    const r = await sgmatSelfCheck(gpu);
    if (gpu.features.subgroupMatrix && gpu.subgroupMinSize === gpu.subgroupMaxSize) {
      expect(r.exercised).toBe('real');
      expect(r.cases.every((c) => c.ok), r.reason).toBe(true);
      expect(r.used).toBe(true);
    } else {
      expect(r.used).toBe(false);
      expect(r.exercised).toBe('none');
      expect(r.reason.length).toBeGreaterThan(10);
    }
  });

  it('the emulated self-check passes every case and never claims the kernels are used', async () => {
    const r = await sgmatSelfCheck(gpu, { emulate: true });
    expect(r.cases.map((c) => c.problems).flat()).toEqual([]);
    expect(r.cases.length).toBe(3);
    expect([r.used, r.exercised]).toEqual([false, 'twin']);
  });
});
