// Routing and the MXFP4 mixture-of-experts kernels against float64 references, on both reduction
// paths: the exhaustive FP4 decode, top-k + softmax (with exact ties), mlp1 + SwiGLU, mlp2 +
// weighted combine + residual add, the three chained as the forward pass uses them, and each MoE
// block of the oracle model tiny-e128k4 (OpenAI's float64 reference) from its recorded input.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeDispatches, uploadBuffer, type Dispatch } from '../../src/gpu/buffers.js';
import { OpContext } from '../../src/engine/ops/context.js';
import { moeDownOp, moeUpOp, mxfp4DecodeOp, topkOp, type MoeTuning } from '../../src/engine/ops/moe.js';
import { rmsnormOp } from '../../src/engine/ops/basic.js';
import { FP4_VALUES, bf16ToF32Array, dequantMxfp4 } from '../../src/model/mxfp4.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';
import { ORACLE, manifest, referenceTensors } from '../helpers/oracle.js';
import { noGpuErrors, poisoned, readF32, readU32, shaderVariants, submit, testGpu } from '../helpers/gpu.js';
import { randomF32, rng } from '../helpers/random.js';
import { expectClose } from '../helpers/compare.js';
import { moeDownRef, moeUpRef, packRouting, randomMxfp4, randomRouting, topkRef } from '../helpers/moe-ref.js';

const variants = await shaderVariants();
const gpu = await testGpu();
const LIMIT = 7.0;
const GUARD = 64;

function step(ctx: OpContext, tokens: number) {
  ctx.writeStep({ tokens, rows: 0, samples: 0 });
}

async function run(ctx: OpContext, ops: Dispatch[], tokens: number) {
  step(ctx, tokens);
  await noGpuErrors(gpu, () => submit(gpu, (p) => encodeDispatches(p, ops, { tokens, rows: 0, samples: 0 })));
}

describe('MXFP4 decode (lib/mxfp4.wgsl)', () => {
  it('decodes all 16 codes at every scale byte exactly, -0 and the fp16-subnormal 0.5 included', async () => {
    const ctx = new OpContext(gpu, variants[0]!.shaders);
    // Two blocks per scale byte 0..254: each holds every code in the low and in the high nibble.
    const S = 255;
    const count = 2 * S;
    const blocks = new Uint8Array(count * 16);
    const scales = new Uint8Array(count);
    for (let s = 0; s < S; s++) {
      for (let j = 0; j < 16; j++) {
        blocks[(2 * s) * 16 + j] = j | ((15 - j) << 4);
        blocks[(2 * s + 1) * 16 + j] = ((j * 7 + 3) & 15) | (((j * 5 + s) & 15) << 4);
      }
      scales[2 * s] = s;
      scales[2 * s + 1] = s;
    }
    const want = dequantMxfp4(blocks, scales, count, 32);
    const out = poisoned(gpu, count * 32 * 4);
    const op = mxfp4DecodeOp(ctx, {
      blocks: uploadBuffer(gpu, blocks, 'blocks'),
      scales: uploadBuffer(gpu, scales, 'scales'),
      out,
      count,
    });
    await run(ctx, [op], 1);
    const got = await readF32(gpu, out, count * 32);

    // The CPU table itself: nibble 8 is -0, and 2^(s-127) scaling.
    expect(Object.is(FP4_VALUES[8], -0)).toBe(true);
    expect(want[2 * 110 * 32 + 2 * 1]).toBe(0.5 * 2 ** (110 - 127));

    let checked = 0;
    let negZeros = 0;
    const codesSeen = new Set<number>();
    for (let n = 0; n < count; n++) {
      const s = scales[n]!;
      for (let q = 0; q < 32; q++) {
        const idx = n * 32 + q;
        const byte = blocks[n * 16 + (q >> 1)]!;
        const code = q & 1 ? byte >> 4 : byte & 15;
        const w = want[idx]!;
        // Values the f32 normal range cannot hold are outside the contract: overflow (s >= 253 with
        // large codes) and f32 subnormals (s <= 1), which devices may flush.
        const representable = Number.isFinite(w) && (w === 0 || Math.abs(w) >= 2 ** -126);
        if (!representable) {
          expect(s <= 1 || s >= 253, `unexpected unrepresentable value at s=${s}`).toBe(true);
          continue;
        }
        if (!Object.is(got[idx], w)) {
          throw new Error(`block ${n} (scale byte ${s}) element ${q} (code ${code}): got ${got[idx]}, expected ${w}`);
        }
        checked++;
        if (s >= 107 && s <= 132) codesSeen.add(code * 256 + s);
        if (code === 8) {
          expect(1 / got[idx]!).toBe(-Infinity);
          negZeros++;
        }
      }
    }
    expect(codesSeen.size).toBe(16 * 26); // every code at every scale 2^-20 .. 2^5
    expect(negZeros).toBeGreaterThan(2 * S);
    expect(checked).toBeGreaterThan(count * 32 - 200);
  });
});

/** Logits with exact ties: inside the selected set and across the k / k+1 boundary. */
function tiedLogits(r: () => number, T: number, E: number, k: number): Float32Array {
  const logits = randomF32(r, T * E, 2);
  for (let t = 0; t < T; t++) {
    const row = logits.subarray(t * E, (t + 1) * E);
    const order = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]! || a - b);
    if (t % 3 === 0) {
      // The k-th, (k+1)-th and a lower-ranked expert share the k-th value: the lowest index wins.
      const v = row[order[k - 1]!]!;
      row[order[k]!] = v;
      row[order[Math.min(E - 1, k + 2)]!] = v;
    } else if (t % 3 === 1) {
      // The top two and a random other expert tie at the maximum.
      const v = row[order[0]!]!;
      row[order[1]!] = v;
      row[order[Math.floor(r() * E)]!] = v;
    } else if (E > 64) {
      // A new maximum shared by experts a and a + 64, which one thread holds (WG = 64): a first.
      const a = Math.floor(r() * (E - 64));
      row[a] = row[a + 64] = Math.fround(row[order[0]!]! + 1);
    }
  }
  return logits;
}

describe.each(variants)('MoE kernels ($name)', ({ shaders }) => {
  it.each([
    [32, 4, 7],
    [64, 2, 13],
    [128, 4, 5],
    [20, 3, 11],
    [256, 8, 3],
  ])('topk_softmax E=%i k=%i T=%i, ties to the lower index', async (E, k, T) => {
    const ctx = new OpContext(gpu, shaders);
    const r = rng(E * 31 + k * 7 + T);
    const logits = tiedLogits(r, T, E, k);
    const ref = topkRef(logits, T, E, k);
    const routing = poisoned(gpu, T * k * 8);
    const op = topkOp(ctx, { logits: uploadBuffer(gpu, logits, 'logits'), routing, numExperts: E, topK: k, label: 'topk' });
    await run(ctx, [op], T);
    const got = await readU32(gpu, routing, T * k * 2);
    const ids = Array.from({ length: T * k }, (_, j) => got[2 * j]!);
    const weights = new Float32Array(Uint32Array.from({ length: T * k }, (_, j) => got[2 * j + 1]!).buffer);
    expect(ids).toEqual(ref.ids);
    expectClose(weights, ref.weights, 1e-6, 0, 'routing weights');
    // The tie cases really are ties at the boundary (lower index chosen over an equal logit).
    const boundaryTie = (t: number) => {
      const row = logits.subarray(t * E, (t + 1) * E);
      const kth = row[ref.ids[t * k + k - 1]!]!;
      return row.some((v, i) => v === kth && !ref.ids.slice(t * k, t * k + k).includes(i));
    };
    expect(boundaryTie(0)).toBe(true);
  });

  // [E, k, H, I, T, tuning]: team 4 < subgroup (butterfly inside a subgroup), 32 > lavapipe's 8
  // (partials of several subgroups per row), and the adapter default.
  const upCases: [number, number, number, number, number, MoeTuning & { split?: number }][] = [
    [32, 4, 96, 64, 1, {}],
    [32, 4, 96, 64, 5, { team: 4, split: 1 }],
    [32, 4, 96, 64, 13, { team: 32, wg: 128 }],
    [64, 2, 64, 160, 1, { team: 32 }],
    [64, 2, 64, 160, 5, {}],
    [64, 2, 64, 160, 13, { team: 4, wg: 64 }],
  ];

  // Plus k = 3 and sizes that leave the last workgroup partly idle (I = 40 is not a multiple of the
  // outputs per workgroup; H = 72 not of the rows per workgroup).
  it.each([...upCases, [20, 3, 160, 40, 3, {}] as (typeof upCases)[number]])('moe_up_swiglu E=%i k=%i H=%i I=%i T=%i %o', async (E, k, H, I, T, tune) => {
    const ctx = new OpContext(gpu, shaders);
    const r = rng(E * 1000 + H * 10 + I + T);
    const w1 = randomMxfp4(r, E, 2 * I, H);
    const b1 = randomF32(r, E * 2 * I, 0.5);
    const xn = randomF32(r, T * H);
    const routing = randomRouting(r, T, E, k);
    const ref = moeUpRef(xn, routing, w1.values, b1, T, H, I, k, LIMIT);
    // GUARD extra poisoned floats after h: a write past the end shows up there.
    const h = poisoned(gpu, (T * k * I + GUARD) * 4);
    const op = moeUpOp(ctx, {
      xn: uploadBuffer(gpu, xn, 'xn'),
      routing: uploadBuffer(gpu, routing.packed, 'routing'),
      blocks: uploadBuffer(gpu, w1.blocks, 'w1.blocks'),
      scales: uploadBuffer(gpu, w1.scales, 'w1.scales'),
      bias: uploadBuffer(gpu, b1, 'b1'),
      h,
      hidden: H,
      intermediate: I,
      topK: k,
      numExperts: E,
      swigluLimit: LIMIT,
      label: 'moe_up',
      team: tune.team,
      wg: tune.wg,
    });
    await run(ctx, [op], T);
    const got = await readF32(gpu, h, T * k * I);
    expect(Array.from(await readU32(gpu, h, GUARD, T * k * I))).toEqual(new Array(GUARD).fill(0xffffffff));
    const d = expectClose(got, ref.h, 1e-4, 1e-5, 'h');
    expect(d.maxAbs).toBeLessThan(1e-4);
    // The clamp matters here: gate and up values beyond the limit occur, and an unclamped kernel
    // would miss by far more than the tolerance.
    expect(ref.gateClamped).toBeGreaterThan(0);
    expect(ref.upClamped).toBeGreaterThan(0);
    let noClampErr = 0;
    for (let j = 0; j < got.length; j++) noClampErr = Math.max(noClampErr, Math.abs(ref.hNoClamp[j]! - ref.h[j]!));
    expect(noClampErr).toBeGreaterThan(1);
  });

  it.each([...upCases, [20, 3, 72, 96, 3, {}] as (typeof upCases)[number]])('moe_down_acc E=%i k=%i H=%i I=%i T=%i %o', async (E, k, H, I, T, tune) => {
    const ctx = new OpContext(gpu, shaders);
    const r = rng(E * 2000 + H * 10 + I + T);
    const w2 = randomMxfp4(r, E, H, I);
    const b2 = randomF32(r, E * H, 0.5);
    const hin = randomF32(r, T * k * I, 2);
    const x0 = randomF32(r, T * H, 2);
    const routing = randomRouting(r, T, E, k);
    const want = moeDownRef(x0, hin, routing, w2.values, b2, T, H, I, k);
    const x = uploadBuffer(gpu, Float32Array.from([...x0, ...new Array(GUARD).fill(-1)]), 'x');
    const op = moeDownOp(ctx, {
      h: uploadBuffer(gpu, hin, 'h'),
      routing: uploadBuffer(gpu, routing.packed, 'routing'),
      blocks: uploadBuffer(gpu, w2.blocks, 'w2.blocks'),
      scales: uploadBuffer(gpu, w2.scales, 'w2.scales'),
      bias: uploadBuffer(gpu, b2, 'b2'),
      x,
      hidden: H,
      intermediate: I,
      topK: k,
      numExperts: E,
      label: 'moe_down',
      ...tune,
    });
    await run(ctx, [op], T);
    const d = expectClose(await readF32(gpu, x, T * H), want, 2e-4, 1e-5, 'x');
    expect(Array.from(await readF32(gpu, x, GUARD, T * H))).toEqual(new Array(GUARD).fill(-1));
    expect(d.maxAbs).toBeLessThan(2e-4);
  });

  it('router top-k -> mlp1 + SwiGLU -> mlp2 + combine, chained on the GPU (E=32 k=4 H=96 I=64 T=7)', async () => {
    const [E, k, H, I, T] = [32, 4, 96, 64, 7];
    const ctx = new OpContext(gpu, shaders);
    const r = rng(4242);
    const logits = randomF32(r, T * E, 2);
    const xn = randomF32(r, T * H);
    const x0 = randomF32(r, T * H, 2);
    const w1 = randomMxfp4(r, E, 2 * I, H);
    const b1 = randomF32(r, E * 2 * I, 0.5);
    const w2 = randomMxfp4(r, E, H, I);
    const b2 = randomF32(r, E * H, 0.5);
    const top = topkRef(logits, T, E, k);
    const refRouting = { ids: Uint32Array.from(top.ids), weights: Float32Array.from(top.weights), packed: packRouting(top.ids, top.weights) };
    const up = moeUpRef(xn, refRouting, w1.values, b1, T, H, I, k, LIMIT);
    const want = moeDownRef(x0, up.h, { ...refRouting, weights: Float32Array.from(top.weights) }, w2.values, b2, T, H, I, k);

    const routing = poisoned(gpu, T * k * 8);
    const h = poisoned(gpu, T * k * I * 4);
    const x = uploadBuffer(gpu, x0, 'x');
    const common = { routing, hidden: H, intermediate: I, topK: k, numExperts: E };
    const ops = [
      topkOp(ctx, { logits: uploadBuffer(gpu, logits, 'logits'), routing, numExperts: E, topK: k, label: 'topk' }),
      moeUpOp(ctx, {
        ...common,
        xn: uploadBuffer(gpu, xn, 'xn'),
        blocks: uploadBuffer(gpu, w1.blocks, 'w1.blocks'),
        scales: uploadBuffer(gpu, w1.scales, 'w1.scales'),
        bias: uploadBuffer(gpu, b1, 'b1'),
        h,
        swigluLimit: LIMIT,
        label: 'moe_up',
      }),
      moeDownOp(ctx, {
        ...common,
        h,
        blocks: uploadBuffer(gpu, w2.blocks, 'w2.blocks'),
        scales: uploadBuffer(gpu, w2.scales, 'w2.scales'),
        bias: uploadBuffer(gpu, b2, 'b2'),
        x,
        label: 'moe_down',
      }),
    ];
    await run(ctx, ops, T);
    const ids = await readU32(gpu, routing, T * k * 2);
    expect(Array.from({ length: T * k }, (_, j) => ids[2 * j]!)).toEqual(top.ids);
    expectClose(await readF32(gpu, x, T * H), want, 5e-4, 1e-5, 'x after the MoE block');
  });
});

// OpenAI's reference (float64) on tiny-e128k4: each layer's MoE block from its recorded input.
describe.each(variants)('MoE blocks against the oracle, tiny-e128k4 ($name)', ({ shaders }) => {
  const model = 'tiny-e128k4';
  const man = manifest(model);
  const sh = man.shapes as { hidden: number; intermediate: number; experts: number; top_k: number; layers: number; swiglu_limit: number; rms_norm_eps: number };
  const [H, I, E, k, L] = [sh.hidden, sh.intermediate, sh.experts, sh.top_k, sh.layers];
  const P = man.prompt_ids.length;

  it('decodes the official expert dequantization exactly, and every layer matches routing and mlp_out', async () => {
    const ref = await referenceTensors(model);
    const f = await SafetensorsFile.open(join(ORACLE, model, 'original', 'model.safetensors'));
    const bytes = async (name: string) => (await f.readTensorBytes(name)).slice();
    const f32 = async (name: string) => bf16ToF32Array(await bytes(name));
    const ctx = new OpContext(gpu, shaders);
    try {
      // The checked expert, decoded on the GPU, equals the official dequantization bit for bit.
      const { layer: cl, expert: ce } = man.mxfp4_check!;
      for (const [w, rows, cols] of [['mlp1_weight', 2 * I, H], ['mlp2_weight', H, I]] as const) {
        const blocks = await bytes(`block.${cl}.mlp.${w}.blocks`);
        const scales = await bytes(`block.${cl}.mlp.${w}.scales`);
        const nb = (rows * cols) / 32;
        const out = poisoned(gpu, nb * 32 * 4);
        const op = mxfp4DecodeOp(ctx, {
          blocks: uploadBuffer(gpu, blocks.subarray(ce * nb * 16, (ce + 1) * nb * 16), 'blocks'),
          scales: uploadBuffer(gpu, scales.subarray(ce * nb, (ce + 1) * nb), 'scales'),
          out,
          count: nb,
        });
        await run(ctx, [op], 1);
        const got = await readF32(gpu, out, nb * 32);
        const want = ref.get(`mxfp4.layer${cl}.expert${ce}.${w}`)!.data;
        for (let j = 0; j < want.length; j++) if (!Object.is(got[j], want[j])) throw new Error(`${w}[${j}]: ${got[j]} != ${want[j]}`);
      }

      for (let l = 0; l < L; l++) {
        const attnOut = ref.get(`layers.${l}.attn_out`)!.data as Float32Array;
        const x = uploadBuffer(gpu, attnOut, 'x');
        const xn = poisoned(gpu, P * H * 4);
        const routing = poisoned(gpu, P * k * 8);
        const h = poisoned(gpu, P * k * I * 4);
        const common = { routing, hidden: H, intermediate: I, topK: k, numExperts: E };
        const ops = [
          rmsnormOp(ctx, { x, scale: uploadBuffer(gpu, await f32(`block.${l}.mlp.norm.scale`), 'scale'), y: xn, hidden: H, eps: sh.rms_norm_eps, label: 'norm' }),
          topkOp(ctx, { logits: uploadBuffer(gpu, ref.get(`layers.${l}.router_logits`)!.data, 'logits'), routing, numExperts: E, topK: k, label: 'topk' }),
          moeUpOp(ctx, {
            ...common,
            xn,
            blocks: uploadBuffer(gpu, await bytes(`block.${l}.mlp.mlp1_weight.blocks`), 'b1'),
            scales: uploadBuffer(gpu, await bytes(`block.${l}.mlp.mlp1_weight.scales`), 's1'),
            bias: uploadBuffer(gpu, await f32(`block.${l}.mlp.mlp1_bias`), 'bias1'),
            h,
            swigluLimit: sh.swiglu_limit,
            label: 'moe_up',
          }),
          moeDownOp(ctx, {
            ...common,
            h,
            blocks: uploadBuffer(gpu, await bytes(`block.${l}.mlp.mlp2_weight.blocks`), 'b2'),
            scales: uploadBuffer(gpu, await bytes(`block.${l}.mlp.mlp2_weight.scales`), 's2'),
            bias: uploadBuffer(gpu, await f32(`block.${l}.mlp.mlp2_bias`), 'bias2'),
            x,
            label: 'moe_down',
          }),
        ];
        await run(ctx, ops, P);
        const rt = await readU32(gpu, routing, P * k * 2);
        const wts = new Float32Array(rt.buffer);
        const refIds = ref.get(`layers.${l}.expert_indices`)!.data;
        const refW = ref.get(`layers.${l}.expert_weights`)!.data;
        for (let t = 0; t < P; t++) {
          const got = new Map<number, number>();
          for (let j = 0; j < k; j++) got.set(rt[2 * (t * k + j)]!, wts[2 * (t * k + j) + 1]!);
          for (let j = 0; j < k; j++) {
            const id = refIds[t * k + j]!;
            expect(got.has(id), `layer ${l} position ${t}: expert ${id} not selected`).toBe(true);
            expect(Math.abs(got.get(id)! - refW[t * k + j]!), `layer ${l} position ${t}: weight of ${id}`).toBeLessThan(1e-6);
          }
        }
        const dd = expectClose(await readF32(gpu, x, P * H), ref.get(`layers.${l}.mlp_out`)!.data, Number(man.tolerances.f32.mlp_out_atol), 0, `layer ${l} mlp_out`);
        expect(dd.maxAbs).toBeLessThan(2e-5); // f32 rounding only (measured ~2e-6)
      }
    } finally {
      await f.close();
    }
  });
});
