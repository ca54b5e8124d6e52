// The small-step MoE against float64 references, on both reduction paths: the parallel expert
// grouping (moe_route_parallel: same grouping as moe_route, plus the used-expert list), the
// expert-grouped MXFP4 matvecs (mlp1 + SwiGLU, mlp2 + bias) and the gather into x. Steps of
// 2..128 tokens; experts with 0, 1, an odd number and more than a staging pass of rows; one
// expert taking every token; experts split over shards; K and output sizes that leave partial
// chunks and row groups. Outputs start poisoned; guard words after them must stay untouched.
// Weight bytes are checked against the floor (each used expert once), multiply-adds against the
// step's routing.
import { describe, expect, it } from 'vitest';
import { encodeDispatches, groupsOf, uploadBuffer, type Dispatch, type StepRouting } from '../../src/gpu/buffers.js';
import { OpContext } from '../../src/engine/ops/context.js';
import { GEMM_TILE } from '../../src/engine/ops/moe.js';
import { allocateMoeSmallM, moeSmallMOps, SMALLM_PASS_ROWS } from '../../src/engine/ops/moe-smallm.js';
import { noGpuErrors, poisoned, readF32, readU32, shaderVariants, submit, testGpu } from '../helpers/gpu.js';
import { randomF32, rng } from '../helpers/random.js';
import { expectClose } from '../helpers/compare.js';
import { moeDownRef, moeUpRef, packRouting, randomMxfp4, randomRouting, type Routing } from '../helpers/moe-ref.js';

const variants = await shaderVariants();
const gpu = await testGpu();
const LIMIT = 7.0;
const GUARD = 64;
const P = SMALLM_PASS_ROWS;

/** k distinct experts per token, slot 0 always `hot` when given (one expert takes every token). */
function routingWith(r: () => number, T: number, E: number, k: number, hot?: number): Routing {
  const base = randomRouting(r, T, E, k);
  if (hot === undefined) return base;
  for (let t = 0; t < T; t++) {
    const row = Array.from(base.ids.subarray(t * k, (t + 1) * k));
    const j = row.indexOf(hot);
    if (j > 0) row[j] = row[0]!;
    row[0] = hot;
    base.ids.set(row, t * k);
  }
  return { ...base, packed: packRouting(base.ids, base.weights) };
}

// [E, k, H, I, T, expert shards, hot expert]
type Case = readonly [number, number, number, number, number, number, number | undefined];
const cases: Case[] = [
  [16, 4, 96, 64, 2, 1, undefined],
  [16, 4, 96, 64, 3, 2, undefined],
  [32, 4, 64, 96, 5, 1, undefined],
  [32, 4, 160, 64, 8, 3, undefined],
  [8, 4, 64, 32, 16, 1, undefined],
  [32, 4, 320, 96, 33, 1, 7], // one expert takes every token: 3 passes of P rows
  [20, 3, 96, 160, 64, 2, undefined],
  [32, 4, 64, 64, 128, 4, undefined],
  [8, 8, 64, 32, 41, 1, 0], // every expert in every token
];

describe.each(variants)('small-step MoE ($name)', ({ shaders }) => {
  const ctx = new OpContext(gpu, shaders);

  it.each(cases)('E=%i k=%i H=%i I=%i T=%i in %i shard(s), hot expert %s', async (E, k, H, I, T, shards, hot) => {
    const r = rng(E * 7919 + T * 31 + k * 3 + H);
    const w1 = randomMxfp4(r, E, 2 * I, H);
    const b1 = randomF32(r, E * 2 * I, 0.5);
    const w2 = randomMxfp4(r, E, H, I);
    const b2 = randomF32(r, E * H, 0.5);
    const xn = randomF32(r, T * H);
    const x0 = randomF32(r, T * H, 2);
    const routing = routingWith(r, T, E, k, hot);
    const up = moeUpRef(xn, routing, w1.values, b1, T, H, I, k, LIMIT);
    const want = moeDownRef(x0, up.h, routing, w2.values, b2, T, H, I, k);

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
    // planned for more tokens than this step holds, like the engine's buffers
    const group = allocateMoeSmallM(gpu, Math.max(T, 64), { numExperts: E, expertsPerToken: k, hiddenSize: H });
    const n = T * k;
    const h = poisoned(gpu, (n * I + GUARD) * 4);
    const x = uploadBuffer(gpu, Float32Array.from([...x0, ...new Array(GUARD).fill(-1)]), 'x');
    const routingBuf = uploadBuffer(gpu, routing.packed, 'routing');
    const ops = moeSmallMOps(ctx, {
      xn: uploadBuffer(gpu, xn, 'xn'),
      routing: routingBuf,
      h,
      x,
      group,
      experts,
      hidden: H,
      intermediate: I,
      topK: k,
      numExperts: E,
      swigluLimit: LIMIT,
      label: 'moe',
    });
    expect(ops.length).toBe(2 + 2 * shards);
    const shape = { tokens: T, rows: 0, samples: 0 };
    // poison the routing metadata too: every word the kernels read must be written by the route
    const metaWords = group.meta.size / 4;
    gpu.device.queue.writeBuffer(group.meta, 0, new Uint32Array(metaWords).fill(0xffffffff));
    ctx.writeStep(shape);
    await noGpuErrors(gpu, () => submit(gpu, (p) => encodeDispatches(p, ops, shape)));

    // the grouping: rows sorted by expert, each expert's rows in assignment order
    const counts = Array.from({ length: E }, (_, e) => routing.ids.filter((id) => id === e).length);
    const meta = await readU32(gpu, group.meta, metaWords);
    const order = await readU32(gpu, group.order, n);
    const dst = await readU32(gpu, group.dst, n);
    const wantOrder = [...Array(n).keys()].sort((a, b) => routing.ids[a]! - routing.ids[b]! || a - b);
    expect(Array.from(order)).toEqual(wantOrder);
    wantOrder.forEach((a, row) => expect(dst[a]).toBe(row));
    let row = 0;
    let tile = 0;
    let used = 0;
    const usedList: number[] = [];
    for (let e = 0; e < E; e++) {
      expect(meta[e], `offset of expert ${e}`).toBe(row);
      expect(meta[E + 1 + e], `first tile of expert ${e}`).toBe(tile);
      expect(meta[group.usedOffset + e], `used before expert ${e}`).toBe(used);
      for (let j = 0; j < Math.ceil(counts[e]! / GEMM_TILE.BM); j++) {
        expect([meta[group.tilesOffset + 2 * (tile + j)], meta[group.tilesOffset + 2 * (tile + j) + 1]]).toEqual([e, row + j * GEMM_TILE.BM]);
      }
      row += counts[e]!;
      tile += Math.ceil(counts[e]! / GEMM_TILE.BM);
      if (counts[e]! > 0) usedList.push(e);
      used += counts[e]! > 0 ? 1 : 0;
    }
    expect([meta[E], meta[2 * E + 1], meta[group.usedOffset + E]]).toEqual([n, tile, used]);
    expect(Array.from(meta.subarray(group.usedOffset + E + 1, group.usedOffset + E + 1 + used))).toEqual(usedList);

    // h at sorted rows equals the reference at its (token, slot); x equals the reference MoE block
    const hGot = await readF32(gpu, h, n * I);
    const hWant = new Float64Array(n * I);
    wantOrder.forEach((a, rr) => hWant.set(up.h.subarray(a * I, (a + 1) * I), rr * I));
    expectClose(hGot, hWant, 1e-4, 1e-5, 'h (sorted rows)');
    expect(Array.from(await readU32(gpu, h, GUARD, n * I))).toEqual(new Array(GUARD).fill(0xffffffff));
    const d = expectClose(await readF32(gpu, x, T * H), want, 2e-4, 1e-5, 'x');
    expect(d.maxAbs).toBeLessThan(2e-4);
    expect(Array.from(await readF32(gpu, x, GUARD, T * H))).toEqual(new Array(GUARD).fill(-1));
    // the clamp takes part (a kernel without it would miss by far more than the tolerance)
    expect(up.gateClamped + up.upClamped).toBeGreaterThan(0);

    // weight bytes: each used expert's matrices once, plus one more read per extra pass of P rows;
    // multiply-adds: exactly the routed rows' (no padding rows)
    const rt: StepRouting = { ids: (b) => (b === routingBuf ? routing.ids : new Uint32Array(0)) };
    const per1 = (2 * I * H) / 2 + (2 * I * H) / 32 + 2 * I * 4;
    const per2 = (H * I) / 2 + (H * I) / 32 + H * 4;
    const floor = used * (per1 + per2);
    const passes = counts.reduce((s, c) => s + Math.ceil(c / P), 0);
    const bytes = ops.reduce((s, o) => s + (o.weightBytes?.(shape, rt) ?? 0), 0);
    expect(bytes).toBe(passes * (per1 + per2));
    if (counts.every((c) => c <= P)) expect(bytes).toBe(floor);
    const macs = ops.reduce((s, o) => s + (o.macs?.(shape, rt) ?? 0), 0);
    // the weight products only: each (token, slot) row once through mlp1 and mlp2, no padding rows
    expect(macs).toBe(n * (2 * I * H + H * I));
    if (hot !== undefined) expect(counts[hot]).toBe(T);
  });

  it('the cases cover experts with 0, 1, an odd number and more than a pass of rows', () => {
    const seen = { zero: false, one: false, odd: false, multiPass: false };
    for (const [E, k, H, I, T, , hot] of cases) {
      // the same draws as the test above up to the routing
      const r = rng(E * 7919 + T * 31 + k * 3 + H);
      randomMxfp4(r, E, 2 * I, H);
      randomF32(r, E * 2 * I, 0.5);
      randomMxfp4(r, E, H, I);
      randomF32(r, E * H, 0.5);
      randomF32(r, T * H);
      randomF32(r, T * H, 2);
      const ids = routingWith(r, T, E, k, hot).ids;
      for (let e = 0; e < E; e++) {
        const c = ids.filter((id) => id === e).length;
        seen.zero ||= c === 0;
        seen.one ||= c === 1;
        seen.odd ||= c > 1 && c % 2 === 1;
        seen.multiPass ||= c > P;
      }
    }
    expect(seen).toEqual({ zero: true, one: true, odd: true, multiPass: true });
  });

  it('steps outside [minTokens, maxTokens] leave the small-step path idle', () => {
    const group = allocateMoeSmallM(gpu, 16, { numExperts: 4, expertsPerToken: 2, hiddenSize: 32 });
    const dummy = uploadBuffer(gpu, new Uint32Array(64), 'dummy');
    const ops: Dispatch[] = moeSmallMOps(ctx, {
      xn: dummy, routing: dummy, h: dummy, x: dummy, group,
      experts: [{ first: 0, count: 4, mlp1Blocks: dummy, mlp1Scales: dummy, mlp1Bias: dummy, mlp2Blocks: dummy, mlp2Scales: dummy, mlp2Bias: dummy }],
      hidden: 32, intermediate: 32, topK: 2, numExperts: 4, swigluLimit: LIMIT, minTokens: 2, label: 'idle',
    });
    const at = (tokens: number) => ops.map((op) => groupsOf(op, { tokens, rows: 0, samples: 0 }));
    expect(at(1).every((g) => g === null)).toBe(true);
    expect(at(17).every((g) => g === null)).toBe(true);
    expect(at(2).every((g) => g !== null)).toBe(true);
    expect(at(16).every((g) => g !== null)).toBe(true);
  });
});
