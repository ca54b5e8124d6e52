// Runs the subgroup-matrix GEMMs (the real kernels, or their emulated twins) on fresh random data
// against the float64 references of sgmat-ref.ts and against the f32 kernels they replace, with
// poisoned outputs and guard words. The load-time self-check, the `selftest` command and the tests
// (test/gpu/sgmat.test.ts) all run these cases.
import { bindGroup, encodeDispatches, readBuffer, storageBuffer, uploadBuffer, type Dispatch } from '../gpu/buffers.js';
import { KERNEL_PARAMS } from '../gpu/kernel-params.js';
import { paramsBuffer } from '../gpu/params.js';
import type { MatmulArgs } from './ops/basic.js';
import type { Gpu } from '../gpu/device.js';
import { ShaderCache } from '../gpu/shaders.js';
import { dequantMxfp4 } from '../model/mxfp4.js';
import { sgmatMoeScalesExact, sgmatUnsupported, SGMAT_MXFP4_SCALES } from './dispatch-policy.js';
import { OpContext } from './ops/context.js';
import { DENSE_TILE } from './ops/dense.js';
import { allocateMoeGroup, moeGroupedOps, mxfp4DecodeOp } from './ops/moe.js';
import { mxfp4F16DecodeOp, sgmatDenseOp, sgmatMoeOps, sgmatShapeOf, sgmatTwin, useSgmat, type SgmatShape } from './ops/sgmat.js';
import { bf16Weights, f16BitsValue, gemmRef, normals, seeded, swiglu64, swigluTol, worst } from './sgmat-ref.js';

export interface CaseResult {
  name: string;
  ok: boolean;
  /** Worst |error| / bound against the float64 reference (<= 1 passes); per output checked. */
  ref: Record<string, number>;
  /** Worst |error| / bound against the f32 kernel (<= 1 passes). */
  f32: number;
  problems: string[];
}

const GUARD = 64;
const POISON = 0xffffffff;
const LIMIT = 7;

export interface DenseCase {
  tokens: number;
  k: number;
  n: number;
  bias?: boolean;
  accumulate?: boolean;
  /** Logits rows: x holds `rows` rows; y has `ny` columns and this W fills [n0, n0 + n). */
  outRows?: { rows: number; n0: number; ny: number };
  seed?: number;
}

export interface CheckOptions {
  /** Multiplies the float64 bounds (4 for the real tensor cores: see sgmat-ref.ts). */
  tolScale?: number;
  /** Also run the f32 kernel and compare (default true). */
  withF32?: boolean;
}

async function run(ctx: OpContext, ops: Dispatch[], tokens: number, rows = 0): Promise<void> {
  ctx.writeStep({ tokens, rows, samples: 0 });
  const gpu = ctx.rawGpu;
  gpu.device.pushErrorScope('validation');
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  encodeDispatches(pass, ops, { tokens, rows, samples: 0 });
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
  const err = await gpu.device.popErrorScope();
  if (err) throw new Error(`validation error: ${err.message}`);
}

async function readWords(gpu: Gpu, buf: GPUBuffer, count: number, offset = 0): Promise<Uint32Array> {
  return new Uint32Array(await readBuffer(gpu, buf, offset * 4, count * 4));
}

function f32Words(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function withGuard(words: Uint32Array): Uint32Array {
  const out = new Uint32Array(words.length + GUARD).fill(POISON);
  out.set(words);
  return out;
}

/**
 * matmul_tiled alone (denseOps would build, and a device compile, every variant of the product):
 * the f32 kernel the subgroup-matrix GEMM replaces.
 */
function tiledOp(ctx: OpContext, a: MatmulArgs, rows: number): Dispatch {
  const flags = [a.bias ? 'BIAS' : '', a.accumulate ? 'ACCUMULATE' : '', a.outRows ? 'OUT_ROWS' : ''].filter(Boolean);
  const pipeline = ctx.shaders.pipeline({ shader: 'matmul_tiled', defines: { ...DENSE_TILE }, flags });
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.matmul_tiled, { k: a.k, n: a.n, n0: a.n0 ?? 0, ny: a.ny ?? a.n }, 'check.tiled.params');
  const bufs = [ctx.step, params, a.x, a.w, ...(a.bias ? [a.bias] : []), a.y];
  return {
    label: 'check.tiled',
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, bufs),
    groups: [Math.ceil(rows / DENSE_TILE.BM), Math.ceil(a.n / DENSE_TILE.BN), 1],
  };
}

/** One dense product through matmul_sgmat (and matmul_tiled), checked everywhere it writes or must not. */
export async function denseCase(ctx: OpContext, shape: SgmatShape, c: DenseCase, opts: CheckOptions = {}): Promise<CaseResult> {
  const r = seeded(c.seed ?? c.tokens * 7919 + c.k * 31 + c.n);
  const rows = c.outRows ? c.outRows.rows : c.tokens;
  const ny = c.outRows?.ny ?? c.n;
  const n0 = c.outRows?.n0 ?? 0;
  const x = normals(r, rows * c.k);
  const w = bf16Weights(r, c.n * c.k, 0.05);
  const bias = c.bias ? normals(r, c.n) : null;
  // y starts as residuals (accumulate) or NaN poison; columns outside the shard and guards must stay
  const y0 = c.accumulate ? normals(r, rows * ny, 2) : new Float32Array(new Uint32Array(rows * ny).fill(POISON).buffer);
  const init = withGuard(new Uint32Array(f32Words(y0)));
  const gpu = ctx.gpu;
  const args = {
    x: uploadBuffer(gpu, x, 'x'),
    w: uploadBuffer(gpu, w.bits, 'w'),
    ...(bias ? { bias: uploadBuffer(gpu, bias, 'bias') } : {}),
    k: c.k,
    n: c.n,
    accumulate: c.accumulate ?? false,
    outRows: !!c.outRows,
    n0,
    ny,
    label: 'check',
  };
  const ySg = uploadBuffer(gpu, init, 'y.sgmat');
  await run(ctx, [sgmatDenseOp(ctx, { ...args, y: ySg }, shape)], c.tokens, c.outRows?.rows ?? 0);
  await ctx.shaders.validate();
  const got = new Float32Array((await readWords(gpu, ySg, init.length)).buffer);
  const ref = gemmRef((t) => x.subarray(t * c.k, (t + 1) * c.k), rows, w.values, c.n, c.k, (t, n) => (bias ? bias[n]! : 0) + (c.accumulate ? y0[t * ny + n0 + n]! : 0));
  const problems: string[] = [];
  const inShard = new Float32Array(rows * c.n);
  for (let t = 0; t < rows; t++) inShard.set(got.subarray(t * ny + n0, t * ny + n0 + c.n), t * c.n);
  const q = worst(inShard, ref.value, ref.tol, opts.tolScale ?? 1);
  if (q.nonFinite) problems.push(`${q.nonFinite} outputs not written (NaN)`);
  if (q.ratio > 1) problems.push(`y off the float64 reference by ${q.ratio.toFixed(2)}x its bound at ${q.at}`);
  const gotWords = f32Words(got);
  let touched = 0;
  for (let i = 0; i < init.length; i++) {
    const t = Math.floor(i / ny);
    const col = i % ny;
    const mine = t < rows && col >= n0 && col < n0 + c.n;
    if (!mine && gotWords[i] !== init[i]) touched++;
  }
  if (touched) problems.push(`${touched} words outside the output (other shards' columns, guards) changed`);
  let f32 = 0;
  if (opts.withF32 ?? true) {
    const yF = uploadBuffer(gpu, init, 'y.f32');
    await run(ctx, [tiledOp(ctx, { ...args, y: yF }, rows)], c.tokens, c.outRows?.rows ?? 0);
    const gotF = new Float32Array(await readBuffer(gpu, yF, 0, rows * ny * 4));
    const inF = new Float32Array(rows * c.n);
    for (let t = 0; t < rows; t++) inF.set(gotF.subarray(t * ny + n0, t * ny + n0 + c.n), t * c.n);
    f32 = worst(inShard, inF, ref.tolF32).ratio;
    if (f32 > 1) problems.push(`y off the f32 kernel by ${f32.toFixed(2)}x the f16-rounding bound`);
  }
  const name = `dense T=${c.tokens}${c.outRows ? ` R=${rows} cols ${n0}..${n0 + c.n} of ${ny}` : ''} K=${c.k} N=${c.n}${c.bias ? ' bias' : ''}${c.accumulate ? ' accumulate' : ''}`;
  return { name, ok: problems.length === 0, ref: { y: q.ratio }, f32, problems };
}

export interface MoeCase {
  experts: number;
  topK: number;
  hidden: number;
  intermediate: number;
  tokens: number;
  shards?: number;
  /**
   * 'random': k distinct experts per token. 'skewed' (k = 2, >= 6 experts): slot 0 is expert 0 for
   * every token (one expert takes every row, more than one tile when tokens > 64); slot 1 gives
   * expert 1 one row, expert 2 an odd count, expert 3 the rest (odd for odd tokens), the others none.
   */
  routing: 'random' | 'skewed';
  seed?: number;
}

function routingOf(r: () => number, c: MoeCase): { ids: Uint32Array; weights: Float32Array; packed: Uint32Array } {
  const { tokens: T, topK: k, experts: E } = c;
  const ids = new Uint32Array(T * k);
  const weights = new Float32Array(T * k);
  for (let t = 0; t < T; t++) {
    if (c.routing === 'skewed') {
      if (k !== 2 || E < 6) throw new Error('skewed routing needs k = 2 and at least 6 experts');
      ids[2 * t] = 0;
      const c2 = Math.floor((T - 1) / 3) | 1;
      ids[2 * t + 1] = t === 0 ? 1 : t <= c2 ? 2 : 3;
    } else {
      const chosen = new Set<number>();
      while (chosen.size < k) chosen.add(Math.floor(r() * E));
      ids.set([...chosen], t * k);
    }
    let sum = 0;
    for (let s = 0; s < k; s++) sum += (weights[t * k + s] = 0.2 + r());
    for (let s = 0; s < k; s++) weights[t * k + s]! /= sum;
  }
  const packed = new Uint32Array(2 * T * k);
  for (let j = 0; j < T * k; j++) {
    packed[2 * j] = ids[j]!;
    packed[2 * j + 1] = f32Words(Float32Array.of(weights[j]!))[0]!;
  }
  return { ids, weights, packed };
}

function randomMxfp4(r: () => number, rows: number, cols: number, sLo: number, sHi: number) {
  const nb = (rows * cols) / 32;
  const blocks = new Uint8Array(nb * 16).map(() => Math.floor(r() * 256));
  const scales = new Uint8Array(nb).map(() => sLo + Math.floor(r() * (sHi - sLo + 1)));
  return { blocks, scales, values: dequantMxfp4(blocks, scales, rows, cols) };
}

/** The grouped MoE through moe_route (64-row tiles), moe_gemm_sgmat x2 and moe_gather. */
export async function moeCase(ctx: OpContext, shape: SgmatShape, c: MoeCase, opts: CheckOptions = {}): Promise<CaseResult> {
  const { experts: E, topK: k, hidden: H, intermediate: I, tokens: T } = c;
  const r = seeded(c.seed ?? E * 7919 + T * 31 + k);
  // mlp2's scales reach the bottom of the f16-exact range (subnormal f16 weights)
  const w1 = randomMxfp4(r, E * 2 * I, H, 112, 122);
  const w2 = randomMxfp4(r, E * H, I, 104, 124);
  const b1 = normals(r, E * 2 * I, 0.5);
  const b2 = normals(r, E * H, 0.5);
  const xn = normals(r, T * H);
  const x0 = normals(r, T * H, 2);
  const routing = routingOf(r, c);
  const gpu = ctx.gpu;
  const shards = c.shards ?? 1;
  const per = Math.ceil(E / shards);
  const experts = Array.from({ length: shards }, (_, i) => {
    const first = i * per;
    const count = Math.min(per, E - first);
    const sl = <A extends Uint8Array | Float32Array>(a: A, each: number) => a.slice(first * each, (first + count) * each) as A;
    return {
      first,
      count,
      mlp1Blocks: uploadBuffer(gpu, sl(w1.blocks, I * H), 'w1.blocks'),
      mlp1Scales: uploadBuffer(gpu, sl(w1.scales, (2 * I * H) / 32), 'w1.scales'),
      mlp1Bias: uploadBuffer(gpu, sl(b1, 2 * I), 'b1'),
      mlp2Blocks: uploadBuffer(gpu, sl(w2.blocks, (H * I) / 2), 'w2.blocks'),
      mlp2Scales: uploadBuffer(gpu, sl(w2.scales, (H * I) / 32), 'w2.scales'),
      mlp2Bias: uploadBuffer(gpu, sl(b2, H), 'b2'),
    };
  });
  const n = T * k;
  const group = allocateMoeGroup(gpu, T, { numExperts: E, expertsPerToken: k, hiddenSize: H });
  const hInit = withGuard(new Uint32Array(n * I).fill(POISON));
  const xInit = withGuard(new Uint32Array(f32Words(x0)));
  const base = { xn: uploadBuffer(gpu, xn, 'xn'), routing: uploadBuffer(gpu, routing.packed, 'routing'), group, experts, hidden: H, intermediate: I, topK: k, numExperts: E, swigluLimit: LIMIT, label: 'check' };
  const h = uploadBuffer(gpu, hInit, 'h');
  const x = uploadBuffer(gpu, xInit, 'x');
  await run(ctx, sgmatMoeOps(ctx, { ...base, h, x }, shape, () => true), T);
  await ctx.shaders.validate();
  const order = await readWords(gpu, group.order, n);
  const dst = await readWords(gpu, group.dst, n);
  const hWords = await readWords(gpu, h, hInit.length);
  const hGot = new Float32Array(hWords.buffer).subarray(0, n * I);
  const yGot = new Float32Array(await readBuffer(gpu, group.y, 0, n * H * 4));
  const xWords = await readWords(gpu, x, xInit.length);
  const xGot = new Float32Array(xWords.buffer).subarray(0, T * H);
  const problems: string[] = [];
  const wantOrder = [...Array(n).keys()].sort((a, b) => routing.ids[a]! - routing.ids[b]! || a - b);
  if (wantOrder.some((a, i) => order[i] !== a)) problems.push('sorted order differs from the expert-sorted assignments');

  // per expert: its sorted rows, mlp1 + SwiGLU from xn, mlp2 from the h the kernel wrote
  const hWant = new Float64Array(n * I);
  const hTol = new Float64Array(n * I);
  const yWant = new Float64Array(n * H);
  const yTol = new Float64Array(n * H);
  let row0 = 0;
  for (let e = 0; e < E; e++) {
    const rowsE = wantOrder.slice(row0).filter((a) => routing.ids[a] === e).length;
    const tokOf = (rr: number) => Math.floor(wantOrder[row0 + rr]! / k);
    const up = gemmRef((rr) => xn.subarray(tokOf(rr) * H, (tokOf(rr) + 1) * H), rowsE, w1.values.subarray(e * 2 * I * H, (e + 1) * 2 * I * H), 2 * I, H, (_, col) => b1[e * 2 * I + col]!);
    for (let rr = 0; rr < rowsE; rr++) {
      for (let i = 0; i < I; i++) {
        const g = up.value[rr * 2 * I + 2 * i]!;
        const u = up.value[rr * 2 * I + 2 * i + 1]!;
        const v = swiglu64(g, u, LIMIT);
        hWant[(row0 + rr) * I + i] = v;
        hTol[(row0 + rr) * I + i] = swigluTol(v, up.tol[rr * 2 * I + 2 * i]!, up.tol[rr * 2 * I + 2 * i + 1]!, LIMIT);
      }
    }
    const down = gemmRef((rr) => hGot.subarray((row0 + rr) * I, (row0 + rr + 1) * I), rowsE, w2.values.subarray(e * H * I, (e + 1) * H * I), H, I, (_, col) => b2[e * H + col]!);
    yWant.set(down.value, row0 * H);
    yTol.set(down.tol, row0 * H);
    row0 += rowsE;
  }
  const s = opts.tolScale ?? 1;
  const qh = worst(hGot, hWant, hTol, s);
  const qy = worst(yGot, yWant, yTol, s);
  for (const [what, q] of [['h', qh], ['mlp2 rows', qy]] as const) {
    if (q.nonFinite) problems.push(`${what}: ${q.nonFinite} outputs not written (NaN)`);
    if (q.ratio > 1) problems.push(`${what} off the float64 reference by ${q.ratio.toFixed(2)}x its bound at ${q.at}`);
  }
  // the gather from the rows the kernel wrote: x0 + sum_s w_s y[dst[t k + s]]
  const xWant = new Float64Array(T * H);
  const xTol = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    for (let col = 0; col < H; col++) {
      let v = x0[t * H + col]!;
      let abs = Math.abs(v);
      for (let sl = 0; sl < k; sl++) {
        const term = routing.weights[t * k + sl]! * yGot[dst[t * k + sl]! * H + col]!;
        v += term;
        abs += Math.abs(term);
      }
      xWant[t * H + col] = v;
      xTol[t * H + col] = 2 ** -23 * (k + 1) * abs;
    }
  }
  const qx = worst(xGot, xWant, xTol);
  if (qx.nonFinite || qx.ratio > 1) problems.push(`x off the gathered rows (${qx.ratio.toFixed(2)}x, ${qx.nonFinite} NaN)`);
  if (hWords.subarray(n * I).some((v) => v !== POISON)) problems.push('h guard words changed');
  if (xWords.subarray(T * H).some((v, i) => v !== xInit[T * H + i])) problems.push('x guard words changed');

  let f32 = 0;
  if (opts.withF32 ?? true) {
    // the f32 grouped GEMM on the same inputs; the f16 rounding of xn and h moves x by ~2^-11 of
    // the MoE update's terms, a wrong fragment by O(1): 2^-5 of the largest update separates them
    const x2 = uploadBuffer(gpu, xInit, 'x.f32');
    const h2 = uploadBuffer(gpu, hInit, 'h.f32');
    await run(ctx, moeGroupedOps(ctx, { ...base, h: h2, x: x2, minTokens: 1 }), T);
    const xF = new Float32Array(await readBuffer(gpu, x2, 0, T * H * 4));
    let upd = 0;
    let d = 0;
    for (let i = 0; i < T * H; i++) {
      upd = Math.max(upd, Math.abs(xF[i]! - x0[i]!));
      d = Math.max(d, Math.abs(xGot[i]! - xF[i]!));
    }
    f32 = d / (2 ** -5 * Math.max(upd, 1e-6));
    if (!(f32 <= 1)) problems.push(`x off the f32 grouped GEMM by ${d.toExponential(2)} (largest update ${upd.toExponential(2)})`);
  }
  const name = `moe E=${E} k=${k} H=${H} I=${I} T=${T} ${c.routing}${shards > 1 ? ` in ${shards} shards` : ''}`;
  return { name, ok: problems.length === 0, ref: { h: qh.ratio, y: qy.ratio, x: qx.ratio }, f32, problems };
}

/**
 * The f16 MXFP4 decode with the scale folded in, against the f32 decode (bit for bit) and the CPU
 * decoder, for every code in both nibbles at each scale byte in [sLo, sHi].
 */
export async function mxfp4F16Case(ctx: OpContext, sLo = 104, sHi = 140): Promise<CaseResult & { mismatches: number[] }> {
  const perScale = 2;
  const count = (sHi - sLo + 1) * perScale;
  const blocks = new Uint8Array(count * 16);
  const scales = new Uint8Array(count);
  for (let b = 0; b < count; b++) {
    scales[b] = sLo + Math.floor(b / perScale);
    // block 0 of a scale: byte j = (j, 15 - j); block 1: (15 - j, j): every code in both nibbles
    for (let j = 0; j < 16; j++) blocks[b * 16 + j] = b % 2 ? (15 - j) | (j << 4) : j | ((15 - j) << 4);
  }
  const gpu = ctx.gpu;
  const bBuf = uploadBuffer(gpu, blocks, 'blocks');
  const sBuf = uploadBuffer(gpu, scales, 'scales');
  const out16 = storageBuffer(gpu, count * 32 * 2, 'f16');
  const out32 = storageBuffer(gpu, count * 32 * 4, 'f32');
  await run(ctx, [mxfp4F16DecodeOp(ctx, { blocks: bBuf, scales: sBuf, out: out16, count }), mxfp4DecodeOp(ctx, { blocks: bBuf, scales: sBuf, out: out32, count })], 0);
  await ctx.shaders.validate();
  const halves = new Uint16Array(await readBuffer(gpu, out16, 0, count * 32 * 2));
  const a = f32Words(Float32Array.from(halves, f16BitsValue));
  const b = await readWords(gpu, out32, count * 32);
  const cpu = f32Words(dequantMxfp4(blocks, scales, count, 32));
  const mismatches: number[] = [];
  // f32 bit patterns: -0 must stay -0
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] || a[i] !== cpu[i]) mismatches.push(i);
  const problems = mismatches.length ? [`${mismatches.length} values differ, first at scale byte ${scales[Math.floor(mismatches[0]! / 32)]}`] : [];
  return { name: `mxfp4 f16 decode, scale bytes ${sLo}..${sHi}`, ok: !problems.length, ref: { bits: mismatches.length }, f32: 0, problems, mismatches };
}

/** The cases the load-time self-check runs (small: tens of milliseconds on a GPU). */
export const LOAD_CASES: { dense: DenseCase[]; moe: MoeCase[] } = {
  dense: [{ tokens: 70, k: 96, n: 200, bias: true, accumulate: true }],
  moe: [{ experts: 8, topK: 2, hidden: 96, intermediate: 64, tokens: 71, routing: 'skewed' }],
};

/** What `selftest` adds: odd shapes, shards, logits rows, random routing. */
export const SELFTEST_CASES: { dense: DenseCase[]; moe: MoeCase[] } = {
  dense: [
    ...LOAD_CASES.dense,
    { tokens: 37, k: 160, n: 203, bias: true },
    { tokens: 130, k: 64, n: 128 },
    { tokens: 5, k: 64, n: 150, outRows: { rows: 3, n0: 110, ny: 300 } },
  ],
  moe: [...LOAD_CASES.moe, { experts: 16, topK: 4, hidden: 160, intermediate: 96, tokens: 37, routing: 'random', shards: 3 }],
};

export interface SgmatCheck {
  /** Whether the engine uses the subgroup-matrix kernels. */
  used: boolean;
  reason: string;
  /** 'real': the tensor-core kernels ran; 'twin': the emulated twins; 'none': nothing ran. */
  exercised: 'real' | 'twin' | 'none';
  cases: CaseResult[];
}

/**
 * Runs the real kernels where the adapter has the feature (the twins when `emulate`), on `cases`.
 * Never throws: a compile, validation or numerical failure comes back as used = false with why.
 */
export async function sgmatSelfCheck(gpu: Gpu, o: { emulate?: boolean; cases?: typeof LOAD_CASES } = {}): Promise<SgmatCheck> {
  let shape: SgmatShape;
  if (o.emulate) {
    shape = sgmatTwin();
  } else {
    const why = sgmatUnsupported({ subgroupMatrix: gpu.features.subgroupMatrix, config: gpu.sgmatF16, subgroupMinSize: gpu.subgroupMinSize, subgroupMaxSize: gpu.subgroupMaxSize });
    const s = sgmatShapeOf(gpu);
    if (why || !s) return { used: false, reason: why ?? 'no f16 config', exercised: 'none', cases: [] };
    shape = s;
  }
  const ctx = new OpContext(gpu, new ShaderCache(gpu, false));
  const cases = o.cases ?? LOAD_CASES;
  const opts = { tolScale: shape.emulate ? 1 : 4 };
  const results: CaseResult[] = [];
  const exercised = shape.emulate ? 'twin' : 'real';
  try {
    results.push(await mxfp4F16Case(ctx));
    for (const c of cases.dense) results.push(await denseCase(ctx, shape, c, opts));
    for (const c of cases.moe) results.push(await moeCase(ctx, shape, c, opts));
  } catch (e) {
    return { used: false, reason: `${exercised} kernels failed to build or run: ${(e as Error).message.split('\n').slice(0, 3).join(' ')}`, exercised, cases: results };
  } finally {
    ctx.destroy();
  }
  const bad = results.filter((r) => !r.ok);
  const cfg = `${shape.M}x${shape.N}x${shape.K} f16->f32, ${shape.sgw} lanes`;
  if (bad.length) return { used: false, reason: `${exercised} kernels disagree (${cfg}): ${bad[0]!.name}: ${bad[0]!.problems[0]}`, exercised, cases: results };
  return { used: !shape.emulate, reason: `${exercised} kernels match the f32 kernels and the float64 reference (${cfg})`, exercised, cases: results };
}


const loadChecks = new WeakMap<GPUDevice, Promise<SgmatCheck>>();

/** The engine's choice, as bench and the engine report it. */
export interface SgmatChoice {
  used: boolean;
  /** The MoE experts run on it too (the checkpoint's scales decode to f16 exactly). */
  moe: boolean;
  reason: string;
}

/**
 * At engine load: where the adapter has the feature, run the real kernels on random data (the
 * load cases) and let the engine's factories use them only if every case agrees; otherwise the
 * f32 kernels, with one log line saying why. GPT_OSS_WEBGPU_SGMAT=0 turns them off; =emulate puts
 * the emulated twins in their place (wiring tests on adapters without the feature).
 */
export async function sgmatAtLoad(gpu: Gpu, shaders: ShaderCache, scales: { lo: number; hi: number }): Promise<SgmatChoice> {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  if (env?.GPT_OSS_WEBGPU_SGMAT === '0') return { used: false, moe: false, reason: 'off (GPT_OSS_WEBGPU_SGMAT=0)' };
  if (env?.GPT_OSS_WEBGPU_SGMAT === 'emulate') {
    // the twins in the engine's place, on any adapter with shader-f16: tests the wiring on CPUs
    if (!gpu.features.shaderF16) return { used: false, moe: false, reason: 'GPT_OSS_WEBGPU_SGMAT=emulate needs shader-f16' };
    useSgmat(shaders, { shape: sgmatTwin(), moe: true });
    return { used: true, moe: true, reason: 'emulated twins (GPT_OSS_WEBGPU_SGMAT=emulate): not the tensor cores' };
  }
  if (!gpu.features.subgroupMatrix) return { used: false, moe: false, reason: 'the adapter has no chromium-experimental-subgroup-matrix with f16 -> f32' };
  // once per device: engines loaded again on it (tests, tools) reuse the verdict
  let pending = loadChecks.get(gpu.device);
  if (!pending) loadChecks.set(gpu.device, (pending = sgmatSelfCheck(gpu)));
  const check = await pending;
  const shape = sgmatShapeOf(gpu);
  if (!check.used || !shape) {
    console.warn(`subgroup matrix: not used, the f32 kernels run instead: ${check.reason}`);
    return { used: false, moe: false, reason: check.reason };
  }
  // no experts (lo > hi) means nothing to decode: the MoE path never runs
  const moe = scales.lo > scales.hi || sgmatMoeScalesExact(scales.lo, scales.hi);
  useSgmat(shaders, { shape, moe });
  const moeWhy = moe
    ? 'dense and MoE GEMMs'
    : `dense GEMMs only: MXFP4 scale bytes ${scales.lo}..${scales.hi} leave the f16-exact ${SGMAT_MXFP4_SCALES.lo}..${SGMAT_MXFP4_SCALES.hi}, the experts stay on the f32 GEMM`;
  return { used: true, moe, reason: `${check.reason}; ${moeWhy}` };
}
