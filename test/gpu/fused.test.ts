// The decode path's fused kernels against float64 references, on both reduction paths: norm +
// QKV + RoPE + KV write (qkv_rope), norm + router + the normalised x (router_norm), top-k inside
// mlp1 (moe_up_swiglu TOPK), and final norm + unembedding + greedy argmax over vocabulary shards
// (unembed) with the sampler taking the pick. Odd sizes, several tokens at different positions and
// sequences, poisoned outputs.
import { describe, expect, it } from 'vitest';
import { encodeDispatches, storageBuffer, uploadBuffer, writeBuffer, type Dispatch } from '../../src/gpu/buffers.js';
import { OpContext, SAMPLE_ROW_WORDS, StepInputs, TOK_INFO_WORDS } from '../../src/engine/ops/context.js';
import { qkvRopeOp, routerNormOp, unembedOps } from '../../src/engine/ops/fused.js';
import { moeUpOp } from '../../src/engine/ops/moe.js';
import { sampleOps } from '../../src/engine/ops/sample.js';
import { ropeTable } from '../../src/engine/rope.js';
import { noGpuErrors, poisoned, readF32, readU32, shaderVariants, submit, testGpu } from '../helpers/gpu.js';
import { f16BitsToNumber, randomBf16, randomF32, rng } from '../helpers/random.js';
import { expectClose } from '../helpers/compare.js';
import { ropeAt, rotate } from '../helpers/attention-ref.js';
import { moeUpRef, randomMxfp4, topkRef } from '../helpers/moe-ref.js';

const variants = await shaderVariants();
const gpu = await testGpu();

const ROPE = { ropeTheta: 150000, ropeScalingFactor: 32, ropeNtkAlpha: 1, ropeNtkBeta: 32, initialContextLength: 4096, ropeTruncate: false };
const EPS = 1e-5;

async function run(ctx: OpContext, ops: Dispatch[], tokens: number, rows = 0, samples = 0) {
  ctx.writeStep({ tokens, rows, samples });
  await noGpuErrors(gpu, () => submit(gpu, (p) => encodeDispatches(p, ops, { tokens, rows, samples })));
}

function rmsRef(x: Float32Array, scale: Float32Array, t: number, H: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < H; i++) ss += x[t * H + i]! ** 2;
  const inv = 1 / Math.sqrt(ss / H + EPS);
  return Float64Array.from({ length: H }, (_, i) => x[t * H + i]! * inv * scale[i]!);
}

function matvec(w: Float64Array, x: Float64Array, rows: number, K: number, bias?: Float32Array): Float64Array {
  return Float64Array.from({ length: rows }, (_, n) => {
    let s = bias ? bias[n]! : 0;
    for (let k = 0; k < K; k++) s += w[n * K + k]! * x[k]!;
    return s;
  });
}

describe.each(variants)('fused decode kernels ($name)', ({ shaders }) => {
  const ctx = new OpContext(gpu, shaders);

  it.each([
    // [nq, nkv, H, T, f32 KV]
    [8, 2, 96, 3, false],
    [4, 1, 160, 6, true],
    [6, 2, 64, 1, false],
  ] as const)('qkv_rope: nq=%i nkv=%i H=%i T=%i f32=%s', async (nq, nkv, H, T, f32) => {
    const d = 64;
    const P = 16;
    const r = rng(nq * 100 + H + T);
    const rowsW = (nq + 2 * nkv) * d;
    const x = randomF32(r, T * H, 2);
    const scale = randomF32(r, H, 1);
    const w = randomBf16(r, rowsW * H, 0.1);
    const bias = randomF32(r, rowsW, 0.5);
    // tokens of two sequences at scattered positions; each sequence's pages in its table row
    const seqs = [0, 1];
    const pos = Array.from({ length: T }, (_, t) => (t % 2 ? 5 + 3 * t : 40 + t));
    const maxBlocks = 4;
    const table = Uint32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
    const toks = new Uint32Array(T * TOK_INFO_WORDS);
    for (let t = 0; t < T; t++) toks.set([0, pos[t]!, seqs[t % 2]!, 0], t * TOK_INFO_WORDS);
    const words = 8 * nkv * P * (f32 ? d : d / 2);
    const kpool = poisoned(gpu, words * 4);
    const vpool = poisoned(gpu, words * 4);
    const qkv = poisoned(gpu, T * rowsW * 4);
    const cfg = { numHeads: nq, numKvHeads: nkv, headDim: d, hiddenSize: H, rmsNormEps: EPS };
    const op = qkvRopeOp(ctx, {
      toks: uploadBuffer(gpu, toks, 'toks'),
      x: uploadBuffer(gpu, x, 'x'),
      normScale: uploadBuffer(gpu, scale, 'scale'),
      w: uploadBuffer(gpu, w.bits, 'w'),
      bias: uploadBuffer(gpu, bias, 'bias'),
      rope: uploadBuffer(gpu, ropeTable({ headDim: d, ...ROPE }, 64), 'rope'),
      table: uploadBuffer(gpu, table, 'table'),
      kpool,
      vpool,
      qkv,
      cfg,
      kv: { pageSize: P, f32, maxBlocks },
      label: 'qkv',
    });
    await run(ctx, [op], T);
    const gotQ = await readF32(gpu, qkv, T * rowsW);
    const kw = await readU32(gpu, kpool, words);
    const vw = await readU32(gpu, vpool, words);
    const read = (arr: Uint32Array, page: number, g: number, slot: number) => {
      const per = f32 ? d : d / 2;
      const b = ((page * nkv + g) * P + slot) * per;
      return Float64Array.from({ length: d }, (_, i) =>
        f32 ? new Float32Array(new Uint32Array([arr[b + i]!]).buffer)[0]! : f16BitsToNumber(i % 2 ? arr[b + (i >> 1)]! >>> 16 : arr[b + (i >> 1)]! & 0xffff),
      );
    };
    for (let t = 0; t < T; t++) {
      const y = matvec(w.values, rmsRef(x, scale, t, H), rowsW, H, bias);
      const cs = ropeAt({ headDim: d, ...ROPE }, pos[t]!);
      for (let h = 0; h < nq; h++) expectClose(gotQ.subarray(t * rowsW + h * d, t * rowsW + (h + 1) * d), rotate(y.subarray(h * d), cs), 2e-4, 1e-4, `q t=${t} h=${h}`);
      const page = table[seqs[t % 2]! * maxBlocks + Math.floor(pos[t]! / P)]!;
      for (let g = 0; g < nkv; g++) {
        const tol = f32 ? 2e-4 : 4e-3;
        expectClose(read(kw, page, g, pos[t]! % P), rotate(y.subarray((nq + g) * d), cs), tol, f32 ? 1e-4 : 1e-3, `k t=${t} g=${g}`);
        expectClose(read(vw, page, g, pos[t]! % P), y.subarray((nq + nkv + g) * d, (nq + nkv + g + 1) * d), tol, f32 ? 1e-4 : 1e-3, `v t=${t} g=${g}`);
      }
    }
    // the k and v rows of qkv are not written (they live in the cache)
    expect(Number.isNaN(gotQ[nq * d]!)).toBe(true);
  });

  it.each([
    [32, 96, 3],
    [128, 64, 7],
    [5, 160, 2],
  ] as const)('router_norm: E=%i H=%i T=%i (logits and the normalised x)', async (E, H, T) => {
    const r = rng(E + H * 3 + T);
    const x = randomF32(r, T * H, 2);
    const scale = randomF32(r, H, 1);
    const w = randomBf16(r, E * H, 0.1);
    const bias = randomF32(r, E, 0.5);
    const logits = poisoned(gpu, T * E * 4);
    const xn = poisoned(gpu, T * H * 4);
    const op = routerNormOp(ctx, {
      x: uploadBuffer(gpu, x, 'x'),
      normScale: uploadBuffer(gpu, scale, 's'),
      w: uploadBuffer(gpu, w.bits, 'w'),
      bias: uploadBuffer(gpu, bias, 'b'),
      logits,
      xn,
      cfg: { numExperts: E, hiddenSize: H, rmsNormEps: EPS },
      label: 'router',
    });
    await run(ctx, [op], T);
    const gotL = await readF32(gpu, logits, T * E);
    const gotX = await readF32(gpu, xn, T * H);
    for (let t = 0; t < T; t++) {
      const n = rmsRef(x, scale, t, H);
      expectClose(gotX.subarray(t * H, (t + 1) * H), n, 1e-5, 1e-5, `xn t=${t}`);
      expectClose(gotL.subarray(t * E, (t + 1) * E), matvec(w.values, n, E, H, bias), 2e-4, 1e-4, `logits t=${t}`);
    }
  });

  // 128 experts: 16 per lane of an 8-wide subgroup (lavapipe), 4 of a 32-wide one
  it.each([
    [32, 4],
    [128, 4],
    [64, 2],
  ] as const)('mlp1 picks its experts from %i router logits (top-%i with a tie) and writes the routing for mlp2', async (E, k) => {
    const [H, I, T] = [96, 64, 5];
    const r = rng(77 + E);
    const logits = randomF32(r, T * E, 2);
    logits[3] = logits[9] = 8; // a tie at the top of token 0: the lower index wins
    const xn = randomF32(r, T * H);
    const w1 = randomMxfp4(r, E, 2 * I, H);
    const b1 = randomF32(r, E * 2 * I, 0.5);
    const top = topkRef(logits, T, E, k);
    expect(top.ids.slice(0, 2)).toEqual([3, 9]);
    const routing = poisoned(gpu, T * k * 8);
    const h = poisoned(gpu, T * k * I * 4);
    const op = moeUpOp(ctx, {
      xn: uploadBuffer(gpu, xn, 'xn'),
      routing,
      topkLogits: uploadBuffer(gpu, logits, 'logits'),
      blocks: uploadBuffer(gpu, w1.blocks, 'b'),
      scales: uploadBuffer(gpu, w1.scales, 's'),
      bias: uploadBuffer(gpu, b1, 'b1'),
      h,
      hidden: H,
      intermediate: I,
      topK: k,
      numExperts: E,
      swigluLimit: 7,
      label: 'mlp1',
    });
    await run(ctx, [op], T);
    const raw = await readU32(gpu, routing, T * k * 2);
    const ids = Array.from({ length: T * k }, (_, j) => raw[2 * j]!);
    const ws = new Float32Array(Uint32Array.from({ length: T * k }, (_, j) => raw[2 * j + 1]!).buffer);
    expect(ids).toEqual(top.ids);
    expectClose(ws, top.weights, 1e-6, 1e-6, 'routing weights');
    const ref = moeUpRef(xn, { ids: Uint32Array.from(top.ids), weights: Float32Array.from(top.weights), packed: new Uint32Array(0) }, w1.values, b1, T, H, I, k, 7);
    expectClose(await readF32(gpu, h, T * k * I), ref.h, 1e-4, 1e-5, 'h');
  });

  it.each([
    // [V, H, R, shards]
    [333, 96, 3, 1],
    [1000, 64, 9, 3],
    [77, 160, 1, 2],
    [500, 64, 2, 1],
  ] as const)('unembed: V=%i H=%i R=%i in %i shard(s): logits, the greedy pick, and the sampler taking it', async (V, H, R, nshards) => {
    const r = rng(V + H + R);
    const T = R + 2;
    const x = randomF32(r, T * H, 2);
    const scale = randomF32(r, H, 1);
    const w = randomBf16(r, V * H, 0.1);
    const rows = Uint32Array.from({ length: R }, (_, i) => (i * 5 + 1) % T);
    const want = Array.from(rows, (t) => matvec(w.values, rmsRef(x, scale, t, H), V, H));
    const per = Math.ceil(V / nshards);
    const shards = Array.from({ length: nshards }, (_, i) => {
      const first = i * per;
      const count = Math.min(per, V - first);
      return { first, count, buffer: uploadBuffer(gpu, w.bits.slice(first * H, (first + count) * H), `w${i}`) };
    });
    const hasArgmax = gpu.features.atomicVec2uMinMax;
    const inputs = new StepInputs(gpu, { tokens: T, rows: R, samples: R, seqs: R, vocab: V });
    writeBuffer(gpu, inputs.rows, 0, rows);
    writeBuffer(gpu, inputs.argmax, 0, new Uint32Array(2 * R)); // the embedding's reset
    const logits = poisoned(gpu, R * V * 4);
    const ops = unembedOps(ctx, {
      rows: inputs.rows,
      x: uploadBuffer(gpu, x, 'x'),
      normScale: uploadBuffer(gpu, scale, 's'),
      shards,
      logits,
      argmax: hasArgmax ? { picks: inputs.argmax, samples: inputs.sampling } : undefined,
      cfg: { vocabSize: V, hiddenSize: H, rmsNormEps: EPS },
      label: 'unembed',
    });
    // greedy rows take the pick (or scan the logits without the feature)
    const sr = new Uint32Array(R * SAMPLE_ROW_WORDS);
    for (let i = 0; i < R; i++) sr.set([i, i, 1, 0, 0, 0x3f800000, 0, 0], i * SAMPLE_ROW_WORDS);
    writeBuffer(gpu, inputs.sampling, 0, sr);
    ops.push(...sampleOps(ctx, { logits, inputs, vocab: V, argmax: hasArgmax ? inputs.argmax : undefined }));
    await run(ctx, ops, T, R, R);
    const got = await readF32(gpu, logits, R * V);
    const ids = await readU32(gpu, inputs.sampled, R);
    for (let i = 0; i < R; i++) {
      expectClose(got.subarray(i * V, (i + 1) * V), want[i]!, 2e-4, 1e-4, `row ${i}`);
      // the GPU's own logits decide the argmax (lowest index on ties)
      const row = Array.from(got.subarray(i * V, (i + 1) * V));
      expect(ids[i], `row ${i} greedy id`).toBe(row.indexOf(Math.max(...row)));
    }
    inputs.destroy();
  });
});

describe('unembed argmax ties', () => {
  it('equal logits in different shards and workgroups: the lowest index wins', async () => {
    if (!gpu.features.atomicVec2uMinMax) {
      // the portable path (sampler scan) is covered above; nothing to tie here
      expect(gpu.features.atomicVec2uMinMax).toBe(false);
      return;
    }
    const ctx = new OpContext(gpu, variants.at(-1)!.shaders);
    const [V, H] = [700, 32];
    const x = Float32Array.from({ length: H }, (_, i) => (i === 0 ? 1 : 0));
    // rows 50, 333 and 650 (three workgroups, two shards) share the largest value
    const w = new Uint16Array(V * H);
    for (const n of [650, 333, 50]) w[n * H] = 0x4000; // bf16 2.0
    const inputs = new StepInputs(gpu, { tokens: 1, rows: 1, samples: 1, seqs: 1, vocab: V });
    writeBuffer(gpu, inputs.rows, 0, new Uint32Array([0]));
    writeBuffer(gpu, inputs.argmax, 0, new Uint32Array(2));
    const logits = storageBuffer(gpu, V * 4, 'logits');
    const shards = [
      { first: 0, count: 400, buffer: uploadBuffer(gpu, w.slice(0, 400 * H), 'w0') },
      { first: 400, count: 300, buffer: uploadBuffer(gpu, w.slice(400 * H), 'w1') },
    ];
    const ops = unembedOps(ctx, { rows: inputs.rows, x: uploadBuffer(gpu, x, 'x'), normScale: uploadBuffer(gpu, new Float32Array(H).fill(1), 's'), shards, logits, argmax: { picks: inputs.argmax, samples: inputs.sampling }, cfg: { vocabSize: V, hiddenSize: H, rmsNormEps: EPS }, label: 'tie' });
    await run(ctx, ops.reverse(), 1, 1);
    const a = await readU32(gpu, inputs.argmax, 2);
    expect((~a[0]!) >>> 0).toBe(50);
    inputs.destroy();
  });
});
