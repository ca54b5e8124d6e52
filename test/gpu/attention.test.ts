// rope_kv_write + attention (+ the combine of split decode tokens) over the paged KV cache, against
// float64 references: several sequences at different positions in one step (decode tokens and
// prefill chunks), GQA of several shapes, sinks, sliding-window boundaries, pages in random order,
// split-K decode up to position 131071, f16 and f32 KV. Every pool slot starts as NaN: an unwritten
// or out-of-window key that leaked into a result would show, and so would a stray write.
import { describe, expect, it } from 'vitest';
import { encodeDispatches, storageBuffer, uploadBuffer, writeBuffer, type StepShape } from '../../src/gpu/buffers.js';
import { OpContext, TOK_INFO_WORDS } from '../../src/engine/ops/context.js';
import {
  AttentionPlan,
  attentionOps,
  attentionScratch,
  attentionVariants,
  kvTile,
  ropeKvWriteOp,
  type AttentionEntry,
  type KvLayout,
} from '../../src/engine/ops/attention.js';
import { ropeTable, type RopeConfig } from '../../src/engine/rope.js';
import { noGpuErrors, readF32, readU32, shaderVariants, submit, testGpu } from '../helpers/gpu.js';
import { f16BitsToNumber, f16Round, gaussian, randomF32, rng, toF16Bits } from '../helpers/random.js';
import { expectClose } from '../helpers/compare.js';
import { attendRef, ropeAt, rotate, type AttnShape } from '../helpers/attention-ref.js';

const gpu = await testGpu();
// The attention kernels use no subgroup operations: one shader variant covers them.
const { shaders } = (await shaderVariants()).at(-1)!;
const ctx = new OpContext(gpu, shaders);

// gpt-oss RoPE (YaRN factor 32 over 4096, theta 150000).
const ROPE: Omit<RopeConfig, 'headDim'> = {
  ropeTheta: 150000,
  ropeScalingFactor: 32,
  ropeNtkAlpha: 1,
  ropeNtkBeta: 32,
  initialContextLength: 4096,
  ropeTruncate: false,
};
const D = 64;
const NAN_F16_PAIR = 0x7e007e00;
const NAN_F32 = 0x7fc00000;

interface SeqSpec {
  /** Positions [0, pos0) are already in the cache; the step feeds [pos0, pos0 + ntok). */
  pos0: number;
  ntok: number;
}

interface Case {
  name: string;
  nq: number;
  nkv: number;
  sliding: boolean;
  window: number;
  page: number;
  f32?: boolean;
  /** One entry per step: the sequences it feeds (sequence i keeps its slot and pages across steps). */
  steps: SeqSpec[][];
  qScale: number;
  targetWorkgroups?: number;
  /** Checks the plan exercises what the case claims. */
  expectPlan?: (p: AttentionPlan) => void;
}

/** The KV values a pool holds for (page, kv head, slot): decoded f16 pairs or f32 bits. */
function poolRow(words: Uint32Array, f32: boolean, nkv: number, page: number, P: number, g: number, slot: number): Float64Array {
  const kw = f32 ? D : D / 2;
  const base = ((page * nkv + g) * P + slot) * kw;
  const out = new Float64Array(D);
  for (let i = 0; i < kw; i++) {
    const w = words[base + i]!;
    if (f32) out[i] = new Float32Array(new Uint32Array([w]).buffer)[0]!;
    else {
      out[2 * i] = f16BitsToNumber(w & 0xffff);
      out[2 * i + 1] = f16BitsToNumber(w >>> 16);
    }
  }
  return out;
}

async function runCase(c: Case, seed: number) {
  const r = rng(seed);
  const P = c.page;
  const f32 = !!c.f32;
  const cfg = { numHeads: c.nq, numKvHeads: c.nkv, headDim: D, slidingWindow: c.window, ...ROPE };
  const shape: AttnShape = { nq: c.nq, nkv: c.nkv, d: D, sliding: c.sliding, window: c.window };
  const nseq = Math.max(...c.steps.map((s) => s.length));
  const ends = Array.from({ length: nseq }, (_, i) => Math.max(...c.steps.map((st) => (st[i] ? st[i]!.pos0 + st[i]!.ntok : 0))));
  const maxEnd = Math.max(...ends);
  const maxBlocks = Math.ceil(maxEnd / P);
  const layout: KvLayout = { pageSize: P, f32, maxBlocks };
  const lowBlock = (pos: number) => (c.sliding ? Math.floor(Math.max(0, pos + 1 - c.window) / P) : 0);

  // Pages in random order; page 0 is never written (sliding tables point blocks below the window
  // there, so reading one would bring NaN into the result).
  const blocksPer = ends.map((e) => Math.ceil(e / P));
  const numPages = 1 + blocksPer.reduce((a, b) => a + b, 0);
  const order = Array.from({ length: numPages - 1 }, (_, i) => i + 1).sort(() => r() - 0.5);
  const owned = blocksPer.map((n) => order.splice(0, n));
  const table = new Uint32Array(nseq * maxBlocks);
  const firstPos = c.steps[0]!.map((s) => s.pos0);
  for (let s = 0; s < nseq; s++) {
    for (let b = 0; b < blocksPer[s]!; b++) table[s * maxBlocks + b] = b < lowBlock(firstPos[s] ?? 0) ? 0 : owned[s]![b]!;
  }
  const kvWords = (f32 ? D : D / 2) * c.nkv * P * numPages;
  const poison = new Uint32Array(kvWords).fill(f32 ? NAN_F32 : NAN_F16_PAIR);
  // history: random keys/values for positions before each sequence's first step
  const hk = Uint32Array.from(poison);
  const hv = Uint32Array.from(poison);
  const kw = f32 ? D : D / 2;
  for (let s = 0; s < nseq; s++) {
    for (let p = lowBlock(firstPos[s] ?? 0) * P; p < (firstPos[s] ?? 0); p++) {
      for (let g = 0; g < c.nkv; g++) {
        const base = ((table[s * maxBlocks + Math.floor(p / P)]! * c.nkv + g) * P + (p % P)) * kw;
        for (const arr of [hk, hv]) {
          const vals = randomF32(r, D);
          for (let i = 0; i < kw; i++) {
            if (f32) arr[base + i] = new Uint32Array(new Float32Array([vals[i]!]).buffer)[0]!;
            else arr[base + i] = (toF16Bits(vals[2 * i]!) | (toF16Bits(vals[2 * i + 1]!) << 16)) >>> 0;
          }
        }
      }
    }
  }
  const kpool = uploadBuffer(gpu, hk, 'kpool');
  const vpool = uploadBuffer(gpu, hv, 'vpool');
  const tableBuf = uploadBuffer(gpu, table, 'table');
  const Tmax = Math.max(...c.steps.map((st) => st.reduce((a, s) => a + s.ntok, 0)));
  const W = (c.nq + 2 * c.nkv) * D;
  const qkv = storageBuffer(gpu, Tmax * W * 4, 'qkv');
  const attn = storageBuffer(gpu, Tmax * c.nq * D * 4, 'attn');
  const toks = storageBuffer(gpu, Tmax * TOK_INFO_WORDS * 4, 'toks');
  const rope = uploadBuffer(gpu, ropeTable(cfg, maxEnd), 'rope');
  const sinks = Float32Array.from({ length: c.nq }, () => gaussian(r) * 2);
  sinks[0] = 9; // dominates most rows
  if (c.nq > 2) sinks[c.nq - 1] = -25; // negligible
  const plan = new AttentionPlan(gpu, 'attn.test', cfg, c.sliding, layout, { seqs: nseq, tokens: Tmax, targetWorkgroups: c.targetWorkgroups });
  const scratch = attentionScratch(gpu, cfg, plan.partialCap);
  const ops = [
    ropeKvWriteOp(ctx, { toks, qkv, rope, table: tableBuf, kpool, vpool, cfg, kv: layout, label: 'rope' }),
    ...attentionOps(ctx, { plan, qkv, table: tableBuf, kpool, vpool, sinks: uploadBuffer(gpu, sinks, 'sinks'), attn, scratch, kv: layout, label: 'attn' }),
  ];

  for (const [si, step] of c.steps.entries()) {
    const entries: AttentionEntry[] = [];
    const tokInfo = new Uint32Array(Tmax * TOK_INFO_WORDS);
    let T = 0;
    step.forEach((s, slot) => {
      if (!s.ntok) return;
      entries.push({ tok0: T, ntok: s.ntok, seq: slot, pos0: s.pos0 });
      for (let i = 0; i < s.ntok; i++) tokInfo.set([0, s.pos0 + i, slot, 0], (T + i) * TOK_INFO_WORDS);
      T += s.ntok;
    });
    plan.build(entries);
    plan.write();
    if (si === 0) c.expectPlan?.(plan);
    const x = randomF32(r, T * W);
    for (let t = 0; t < T; t++) for (let i = 0; i < c.nq * D; i++) x[t * W + i]! *= c.qScale;
    writeBuffer(gpu, qkv, 0, x);
    writeBuffer(gpu, toks, 0, tokInfo);
    writeBuffer(gpu, attn, 0, new Uint32Array(Tmax * c.nq * D).fill(0xffffffff));
    const st: StepShape = { tokens: T, rows: 0, samples: 0, attention: { [plan.group]: plan.counts } };
    ctx.writeStep(st);
    await noGpuErrors(gpu, () => submit(gpu, (p) => encodeDispatches(p, ops, st)));

    // what the cache holds now: this step's keys must be the rotated k heads (rounded to the
    // storage type), its values the v heads
    const kWords = await readU32(gpu, kpool, kvWords);
    const vWords = await readU32(gpu, vpool, kvWords);
    const keyAt = (s: number, j: number, g: number) => poolRow(kWords, f32, c.nkv, table[s * maxBlocks + Math.floor(j / P)]!, P, g, j % P);
    const valueAt = (s: number, j: number, g: number) => poolRow(vWords, f32, c.nkv, table[s * maxBlocks + Math.floor(j / P)]!, P, g, j % P);
    const round = (v: number) => (f32 ? Math.fround(v) : f16Round(v));
    for (const e of entries) {
      for (let i = 0; i < e.ntok; i++) {
        const t = e.tok0 + i;
        const cs = ropeAt(cfg, e.pos0 + i);
        for (let g = 0; g < c.nkv; g++) {
          const wantK = rotate(x.subarray(t * W + (c.nq + g) * D), cs).map(round);
          const wantV = Array.from(x.subarray(t * W + (c.nq + c.nkv + g) * D, t * W + (c.nq + c.nkv + g + 1) * D), round);
          // one rounding step of the storage type (the kernel rotates in f32 before rounding)
          expectClose(keyAt(e.seq, e.pos0 + i, g), wantK, f32 ? 1e-5 : 4e-3, f32 ? 1e-5 : 1e-3, `${c.name}: stored key`);
          expectClose(valueAt(e.seq, e.pos0 + i, g), Float64Array.from(wantV), 0, 0, `${c.name}: stored value`);
        }
      }
    }
    const want = new Float64Array(T * c.nq * D);
    for (const e of entries) {
      for (let i = 0; i < e.ntok; i++) {
        const t = e.tok0 + i;
        const cs = ropeAt(cfg, e.pos0 + i);
        for (let h = 0; h < c.nq; h++) {
          const q = rotate(x.subarray(t * W + h * D), cs);
          want.set(attendRef(shape, q, h, e.pos0 + i, sinks[h]!, (j, g) => keyAt(e.seq, j, g), (j, g) => valueAt(e.seq, j, g)), (t * c.nq + h) * D);
        }
      }
    }
    expectClose(await readF32(gpu, attn, T * c.nq * D), want, 2e-5, 2e-5, `${c.name}: step ${si}`);
  }
  // nothing was written outside the step's positions: every other slot still holds its poison
  const kWords = await readU32(gpu, kpool, kvWords);
  let stray = 0;
  const written = new Set<number>();
  c.steps.forEach((step) =>
    step.forEach((s, slot) => {
      for (let p = 0; p < s.pos0 + s.ntok; p++) written.add(table[slot * maxBlocks + Math.floor(p / P)]! * P + (p % P));
    }),
  );
  for (let page = 0; page < numPages; page++) {
    for (let slot = 0; slot < P; slot++) {
      if (written.has(page * P + slot)) continue;
      for (let g = 0; g < c.nkv; g++) {
        const base = ((page * c.nkv + g) * P + slot) * kw;
        for (let i = 0; i < kw; i++) if (kWords[base + i] !== hk[base + i]) stray++;
      }
    }
  }
  expect(stray, 'pool words written outside the steps').toBe(0);
  for (const b of [kpool, vpool, tableBuf, qkv, attn, toks, rope, scratch.partO, scratch.partML]) b.destroy();
  plan.destroy();
}

/** Decode items, per token: split key ranges must be disjoint, ordered, tile-aligned and cover the visible keys. */
function checkCoverage(p: AttentionPlan, window: number, sliding: boolean, tile: number): number {
  const byTok = new Map<number, number[][]>();
  for (const it of p.items('decode')) byTok.set(it[0]!, [...(byTok.get(it[0]!) ?? []), it]);
  let most = 0;
  for (const items of byTok.values()) {
    const pos = items[0]![3]!;
    const first = sliding ? Math.max(0, pos + 1 - window) : 0;
    expect(items[0]![4]).toBe(first);
    expect(items.at(-1)![5]).toBe(pos + 1);
    items.forEach((it, i) => {
      expect(it[5]!).toBeGreaterThan(it[4]!); // not empty
      expect(it[7]).toBe(i === 0 ? 1 : 0); // the sink, once
      if (i > 0) {
        expect(it[4]).toBe(items[i - 1]![5]); // contiguous, no overlap
        expect(it[4]! % tile).toBe(0);
      }
    });
    // one item writes the output itself; split items own consecutive partial slots
    if (items.length === 1) expect(items[0]![6]).toBe(0xffffffff);
    else items.forEach((it, i) => expect(it[6]).toBe(items[0]![6]! + i));
    most = Math.max(most, items.length);
  }
  return most;
}

const CASES: Case[] = [
  { name: 'full, GQA 4, one prefill chunk from 0', nq: 8, nkv: 2, sliding: false, window: 5, page: 16, steps: [[{ pos0: 0, ntok: 13 }]], qScale: 3 },
  { name: 'full, GQA 4, f32 KV, chunk over pages', nq: 8, nkv: 2, sliding: false, window: 5, page: 16, f32: true, steps: [[{ pos0: 30, ntok: 21 }]], qScale: 3 },
  { name: 'sliding W=5, 1 kv head, GQA 4', nq: 4, nkv: 1, sliding: true, window: 5, page: 16, steps: [[{ pos0: 0, ntok: 11 }]], qScale: 3 },
  { name: 'sliding W=5, GQA 1 (64 tokens per item)', nq: 2, nkv: 2, sliding: true, window: 5, page: 16, steps: [[{ pos0: 40, ntok: 70 }]], qScale: 2 },
  { name: 'full, GQA 3 (48 rows per item)', nq: 6, nkv: 2, sliding: false, window: 5, page: 32, steps: [[{ pos0: 3, ntok: 20 }]], qScale: 3 },
  { name: 'full, GQA 16, large scores', nq: 16, nkv: 1, sliding: false, window: 5, page: 16, steps: [[{ pos0: 7, ntok: 9 }, { pos0: 40, ntok: 1 }]], qScale: 12 },
  {
    name: 'sliding W=6 over steps (pages written by earlier steps)',
    nq: 4, nkv: 1, sliding: true, window: 6, page: 16,
    steps: [[{ pos0: 0, ntok: 7 }], [{ pos0: 7, ntok: 7 }], [{ pos0: 14, ntok: 10 }], [{ pos0: 24, ntok: 1 }], [{ pos0: 25, ntok: 1 }]],
    qScale: 3,
  },
  {
    name: 'mixed step: decode tokens and prefill chunks of five sequences, sliding W=128',
    nq: 8, nkv: 2, sliding: true, window: 128, page: 32,
    steps: [[{ pos0: 5000, ntok: 1 }, { pos0: 0, ntok: 37 }, { pos0: 129, ntok: 1 }, { pos0: 200, ntok: 64 }, { pos0: 3, ntok: 1 }]],
    qScale: 4,
  },
  {
    name: 'mixed step, full layers: split decodes next to a prefill chunk',
    nq: 8, nkv: 2, sliding: false, window: 128, page: 32,
    // splits of at least 1024 keys: 3 for position 2999, 2 for 1700, none for 700
    steps: [[{ pos0: 2999, ntok: 1 }, { pos0: 100, ntok: 19 }, { pos0: 1700, ntok: 1 }, { pos0: 700, ntok: 1 }]],
    qScale: 4,
    expectPlan: (p) => expect([p.counts.decode, p.counts.combine]).toEqual([3 + 2 + 1, 2]),
  },
  {
    name: 'full decode at 131071, the last context position (split over 128 ranges of 1024 keys)',
    nq: 2, nkv: 1, sliding: false, window: 128, page: 64,
    steps: [[{ pos0: 131071, ntok: 1 }]],
    qScale: 4,
    expectPlan: (p) => expect(p.counts.decode).toBe(128),
  },
  {
    name: 'full decode at 190, one item (no split)',
    nq: 8, nkv: 1, sliding: false, window: 128, page: 16,
    steps: [[{ pos0: 190, ntok: 1 }]],
    qScale: 12,
    targetWorkgroups: 1,
    expectPlan: (p) => expect([p.counts.decode, p.counts.combine]).toEqual([1, 0]),
  },
];

describe('attention over the paged KV cache', () => {
  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    await runCase(c, 1000 + i);
  });

  it('split decode items cover the visible keys exactly once, tile-aligned, the sink in the first', () => {
    const cfg = { numHeads: 64, numKvHeads: 8, headDim: 64, slidingWindow: 128 };
    for (const sliding of [false, true]) {
      for (const page of [16, 32, 64]) {
        const layout = { pageSize: page, f32: false, maxBlocks: Math.ceil(131072 / page) };
        const plan = new AttentionPlan(gpu, 'attn.cover', cfg, sliding, layout, { seqs: 8, tokens: 512 });
        const tile = kvTile(page, 64);
        const positions = [0, 1, tile - 1, tile, 127, 128, 129, 1000, 4095, 131071];
        plan.build(positions.map((pos, i) => ({ tok0: i, ntok: 1, seq: i % 8, pos0: pos })));
        const most = checkCoverage(plan, 128, sliding, tile);
        // long full-attention keys get split; a sliding window never needs more than its tiles
        if (!sliding) expect(most).toBeGreaterThan(1);
        else expect(most).toBeLessThanOrEqual(Math.ceil(128 / tile) + 1);
        plan.destroy();
      }
    }
  });

  it('prefill items are blocks of at most BQ tokens of one sequence, covering the chunk', () => {
    const cfg = { numHeads: 8, numKvHeads: 2, headDim: 64, slidingWindow: 16 };
    const layout = { pageSize: 32, f32: false, maxBlocks: 64 };
    const plan = new AttentionPlan(gpu, 'attn.blocks', cfg, true, layout, { seqs: 4, tokens: 256 });
    const BQ = attentionVariants(cfg, layout).prefill.BQ;
    plan.build([
      { tok0: 0, ntok: 37, seq: 0, pos0: 100 },
      { tok0: 37, ntok: 2, seq: 1, pos0: 0 },
    ]);
    const items = plan.items('prefill');
    let covered = 0;
    for (const it of items) {
      expect(it[1]).toBeLessThanOrEqual(BQ);
      expect(it[4]).toBe(Math.max(0, it[3]! + 1 - 16)); // keys from the first row's window
      expect(it[5]).toBe(it[3]! + it[1]!);
      covered += it[1]!;
    }
    expect(covered).toBe(39);
    plan.destroy();
  });
});
