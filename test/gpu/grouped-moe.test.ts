// The prefill kernels against float64 references: the expert grouping (moe_route), the grouped
// MXFP4 GEMMs (mlp1 + SwiGLU, mlp2 + bias) with the gather-accumulate, and the tiled bf16 GEMM.
// Odd shapes: token counts that are not multiples of the tile, output sizes that leave partial
// tiles, experts with no token, one expert taking every token, experts split over shards.
// Outputs start poisoned; guard words after them must stay untouched. The grouped GEMM's weight
// bytes and multiply-adds are checked against the routing (tiles of BM rows, row slices of BM / TM).
import { describe, expect, it } from 'vitest';
import { encodeDispatches, groupsOf, uploadBuffer, type Dispatch } from '../../src/gpu/buffers.js';
import { OpContext } from '../../src/engine/ops/context.js';
import { allocateMoeGroup, GEMM_TILE, moeGroupedOps } from '../../src/engine/ops/moe.js';
import { DENSE_TILE, denseOps } from '../../src/engine/ops/dense.js';
import type { DenseKernel } from '../../src/engine/dispatch-policy.js';
import { noGpuErrors, poisoned, readF32, readU32, shaderVariants, submit, testGpu } from '../helpers/gpu.js';
import { randomBf16, randomF32, rng } from '../helpers/random.js';
import { expectClose } from '../helpers/compare.js';
import { moeDownRef, moeUpRef, packRouting, randomMxfp4, randomRouting, type Routing } from '../helpers/moe-ref.js';

const gpu = await testGpu();
// These kernels use no subgroup operations: one shader variant covers them.
const { shaders } = (await shaderVariants()).at(-1)!;
const ctx = new OpContext(gpu, shaders);
const LIMIT = 7.0;
const GUARD = 64;

async function run(ops: Dispatch[], tokens: number, rows = 0) {
  ctx.writeStep({ tokens, rows, samples: 0 });
  await noGpuErrors(gpu, () => submit(gpu, (p) => encodeDispatches(p, ops, { tokens, rows, samples: 0 })));
}

/** k distinct experts per token, slot 0 always `hot` when given (one expert takes every token). */
function routingWith(r: () => number, T: number, E: number, k: number, hot?: number): Routing {
  const base = randomRouting(r, T, E, k);
  if (hot === undefined) return base;
  for (let t = 0; t < T; t++) {
    const row = Array.from(base.ids.subarray(t * k, (t + 1) * k));
    const j = row.indexOf(hot);
    // move `hot` into slot 0 (swap with the slot that had it, or replace slot 0)
    if (j > 0) row[j] = row[0]!;
    row[0] = hot;
    base.ids.set(row, t * k);
  }
  return { ...base, packed: packRouting(base.ids, base.weights) };
}

describe('grouped MoE (moe_route, moe_gemm, moe_gather)', () => {
  it.each([
    // [E, k, H, I, T, expert shards, hot expert]
    [32, 4, 96, 64, 37, 1, undefined],
    [32, 4, 96, 64, 70, 3, 5],
    [64, 2, 64, 160, 9, 1, undefined], // most experts get no token
    [20, 3, 160, 96, 33, 2, undefined],
    [8, 8, 64, 32, 41, 1, 0], // every expert in every token
    [16, 4, 64, 96, 150, 2, 3], // one expert with 150 rows: three tiles, the last partial
  ] as const)('E=%i k=%i H=%i I=%i T=%i in %i shard(s), hot expert %s', async (E, k, H, I, T, shards, hot) => {
    const r = rng(E * 7919 + T * 31 + k);
    const w1 = randomMxfp4(r, E, 2 * I, H);
    const b1 = randomF32(r, E * 2 * I, 0.5);
    const w2 = randomMxfp4(r, E, H, I);
    const b2 = randomF32(r, E * H, 0.5);
    const xn = randomF32(r, T * H);
    const x0 = randomF32(r, T * H, 2);
    const routing = routingWith(r, T, E, k, hot);
    const up = moeUpRef(xn, routing, w1.values, b1, T, H, I, k, LIMIT);
    const want = moeDownRef(x0, up.h, routing, w2.values, b2, T, H, I, k);

    // expert shards of uneven sizes, each tensor sliced like the weight loader does
    const per = Math.ceil(E / shards);
    const experts = Array.from({ length: shards }, (_, i) => {
      const first = i * per;
      const count = Math.min(per, E - first);
      const slice = (a: Uint8Array | Float32Array, perExpert: number) => a.slice(first * perExpert, (first + count) * perExpert);
      return {
        first,
        count,
        mlp1Blocks: uploadBuffer(gpu, slice(w1.blocks, (2 * I * H) / 2), 'w1.blocks'),
        mlp1Scales: uploadBuffer(gpu, slice(w1.scales, (2 * I * H) / 32), 'w1.scales'),
        mlp1Bias: uploadBuffer(gpu, slice(b1, 2 * I), 'b1'),
        mlp2Blocks: uploadBuffer(gpu, slice(w2.blocks, (H * I) / 2), 'w2.blocks'),
        mlp2Scales: uploadBuffer(gpu, slice(w2.scales, (H * I) / 32), 'w2.scales'),
        mlp2Bias: uploadBuffer(gpu, slice(b2, H), 'b2'),
      };
    });
    const group = allocateMoeGroup(gpu, T, { numExperts: E, expertsPerToken: k, hiddenSize: H });
    const h = poisoned(gpu, (T * k * I + GUARD) * 4);
    const x = uploadBuffer(gpu, Float32Array.from([...x0, ...new Array(GUARD).fill(-1)]), 'x');
    const ops = moeGroupedOps(ctx, {
      xn: uploadBuffer(gpu, xn, 'xn'),
      routing: uploadBuffer(gpu, routing.packed, 'routing'),
      h,
      x,
      group,
      experts,
      hidden: H,
      intermediate: I,
      topK: k,
      numExperts: E,
      swigluLimit: LIMIT,
      minTokens: 1,
      label: 'moe',
    });
    expect(ops.length).toBe(2 + 2 * shards);
    await run(ops, T);

    // the grouping: rows sorted by expert, each expert's rows in assignment order, tiles of BM
    const n = T * k;
    const meta = await readU32(gpu, group.meta, 2 * (E + 1));
    const order = await readU32(gpu, group.order, n);
    const dst = await readU32(gpu, group.dst, n);
    const wantOrder = [...Array(n).keys()].sort((a, b) => routing.ids[a]! - routing.ids[b]! || a - b);
    expect(Array.from(order)).toEqual(wantOrder);
    wantOrder.forEach((a, row) => expect(dst[a]).toBe(row));
    let row = 0;
    let tile = 0;
    for (let e = 0; e < E; e++) {
      expect(meta[e], `offset of expert ${e}`).toBe(row);
      expect(meta[E + 1 + e], `first tile of expert ${e}`).toBe(tile);
      const c = routing.ids.filter((id) => id === e).length;
      row += c;
      tile += Math.ceil(c / GEMM_TILE.BM);
    }
    expect([meta[E], meta[2 * E + 1]]).toEqual([n, tile]);
    if (hot !== undefined) expect(meta[hot + 1]! - meta[hot]!).toBeGreaterThanOrEqual(T);

    // h at sorted rows equals the reference at its (token, slot)
    const hGot = await readF32(gpu, h, n * I);
    const hWant = new Float64Array(n * I);
    wantOrder.forEach((a, rr) => hWant.set(up.h.subarray(a * I, (a + 1) * I), rr * I));
    expectClose(hGot, hWant, 1e-4, 1e-5, 'h (sorted rows)');
    expect(Array.from(await readU32(gpu, h, GUARD, n * I))).toEqual(new Array(GUARD).fill(0xffffffff));
    const d = expectClose(await readF32(gpu, x, T * H), want, 2e-4, 1e-5, 'x');
    expect(d.maxAbs).toBeLessThan(2e-4);
    expect(Array.from(await readF32(gpu, x, GUARD, T * H))).toEqual(new Array(GUARD).fill(-1));

    // counts: each expert's weights once per BM-row tile of its rows; the arithmetic of its rows
    // rounded up to a row slice (BM / TM)
    const counts = Array.from({ length: E }, (_, e) => routing.ids.filter((id) => id === e).length);
    const tiles = counts.reduce((t, c) => t + Math.ceil(c / GEMM_TILE.BM), 0);
    const slice = GEMM_TILE.BM / GEMM_TILE.TM;
    const sliceRows = counts.reduce((t, c) => t + Math.ceil(c / slice) * slice, 0);
    const shape = { tokens: T, rows: 0, samples: 0 };
    const ids = { ids: () => routing.ids };
    const sum = (part: string, f: (o: Dispatch) => number) => ops.filter((o) => o.label.includes(part)).reduce((t, o) => t + f(o), 0);
    expect(sum('mlp1_gemm', (o) => o.macs!(shape, ids))).toBe(2 * I * H * sliceRows);
    expect(sum('mlp2_gemm', (o) => o.macs!(shape, ids))).toBe(H * I * sliceRows);
    expect(sum('mlp1_gemm', (o) => o.weightBytes!(shape, ids))).toBe(((2 * I * H) / 2 + (2 * I * H) / 32 + 2 * I * 4) * tiles);
    expect(sum('mlp2_gemm', (o) => o.weightBytes!(shape, ids))).toBe(((H * I) / 2 + (H * I) / 32 + H * 4) * tiles);
  });

  it('steps below the token threshold leave the grouped path idle', async () => {
    const group = allocateMoeGroup(gpu, 4, { numExperts: 4, expertsPerToken: 2, hiddenSize: 32 });
    const dummy = uploadBuffer(gpu, new Uint32Array(64), 'dummy');
    const ops = moeGroupedOps(ctx, {
      xn: dummy, routing: dummy, h: dummy, x: dummy, group,
      experts: [{ first: 0, count: 4, mlp1Blocks: dummy, mlp1Scales: dummy, mlp1Bias: dummy, mlp2Blocks: dummy, mlp2Scales: dummy, mlp2Bias: dummy }],
      hidden: 32, intermediate: 32, topK: 2, numExperts: 4, swigluLimit: LIMIT, minTokens: 8, label: 'idle',
    });
    for (const op of ops) expect(groupsOf(op, { tokens: 7, rows: 0, samples: 0 })).toBeNull();
    for (const op of ops) expect(groupsOf(op, { tokens: 8, rows: 0, samples: 0 })).not.toBeNull();
  });
});

function matmulRef(x: Float32Array, w: Float64Array, bias: Float32Array | null, T: number, K: number, N: number): Float64Array {
  const y = new Float64Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n]! : 0;
      for (let c = 0; c < K; c++) s += x[t * K + c]! * w[n * K + c]!;
      y[t * N + n] = s;
    }
  }
  return y;
}

describe('the bf16 matmul variants (matmul_bf16, matmul_rows_bf16, matmul_tiled), each pinned', () => {
  it.each([
    // [T, K, N, bias, accumulate]
    [37, 96, 203, true, false],
    [64, 2880, 70, false, true],
    [16, 128, 64, true, true],
    [100, 64, 9, true, false],
  ] as const)('T=%i K=%i N=%i bias=%s accumulate=%s', async (T, K, N, useBias, acc) => {
    for (const kernel of ['matvec', 'rows', 'tiled'] as DenseKernel[]) await denseCase(T, K, N, useBias, acc, kernel);
  });

  async function denseCase(T: number, K: number, N: number, useBias: boolean, acc: boolean, kernel: DenseKernel) {
    const r = rng(T * 13 + K + N);
    const x = randomF32(r, T * K);
    const w = randomBf16(r, N * K, 0.05);
    const bias = useBias ? randomF32(r, N) : null;
    const y0 = randomF32(r, T * N);
    const want = matmulRef(x, w.values, bias, T, K, N);
    if (acc) for (let i = 0; i < want.length; i++) want[i]! += y0[i]!;
    const y = acc ? uploadBuffer(gpu, Float32Array.from([...y0, ...new Array(GUARD).fill(-1)]), 'y') : poisoned(gpu, (T * N + GUARD) * 4);
    const ops = denseOps(ctx, { x: uploadBuffer(gpu, x, 'x'), w: uploadBuffer(gpu, w.bits, 'w'), bias: bias ? uploadBuffer(gpu, bias, 'b') : undefined, y, k: K, n: N, accumulate: acc, kernel: () => kernel, label: 'mm' });
    expect(ops.map((o) => o.label)).toEqual(['mm', 'mm.rows2', 'mm.rows4', 'mm.rows8', 'mm.rows16', 'mm.rows32', 'mm.tiled64', 'mm.tiled128']);
    const shape = { tokens: T, rows: 0, samples: 0 };
    const ran = ops.filter((o) => (o.when ? o.when(shape) : true) && groupsOf(o, shape));
    expect(ran.map((o) => o.label)).toEqual([kernel === 'matvec' ? 'mm' : kernel === 'tiled' ? (T <= 64 ? 'mm.tiled64' : 'mm.tiled128') : `mm.rows${T <= 2 ? 2 : T <= 4 ? 4 : T <= 8 ? 8 : T <= 16 ? 16 : 32}`]);
    await run(ops, T);
    expectClose(await readF32(gpu, y, T * N), want, 2e-5 * Math.sqrt(K), 1e-5, `${kernel} y`);
    const guard = await readU32(gpu, y, GUARD, T * N);
    expect(Array.from(guard)).toEqual(new Array(GUARD).fill(acc ? 0xbf800000 : 0xffffffff));
  }

  it.each(['matvec', 'rows', 'tiled'] as DenseKernel[])('%s: a shard of the unembedding writes its own columns of the logits rows', async (kernel) => {
    const [R, K, V, n0, n] = [3, 64, 300, 110, 150];
    const r = rng(99);
    const x = randomF32(r, R * K);
    const w = randomBf16(r, n * K, 0.05);
    const y = poisoned(gpu, R * V * 4);
    const ops = denseOps(ctx, { x: uploadBuffer(gpu, x, 'x'), w: uploadBuffer(gpu, w.bits, 'w'), y, k: K, n, n0, ny: V, outRows: true, kernel: () => kernel, label: 'unemb' });
    await run(ops, 5, R);
    const got = await readF32(gpu, y, R * V);
    const want = matmulRef(x, w.values, null, R, K, n);
    for (let t = 0; t < R; t++) {
      expectClose(got.subarray(t * V + n0, t * V + n0 + n), want.subarray(t * n, (t + 1) * n), 1e-4, 1e-5, `row ${t}`);
      // columns of other shards stay untouched
      expect(Number.isNaN(got[t * V + n0 - 1]!) && Number.isNaN(got[t * V + n0 + n]!)).toBe(true);
    }
    expect(K % DENSE_TILE.BK).toBe(0);
  });
});
