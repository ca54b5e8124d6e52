// The attention block's middle over the paged KV cache: RoPE + KV write, attention (sinks, GQA,
// sliding window) and the combine of split decode tokens. The host plans each step's attention
// work per layer type (AttentionPlan): which tokens form work items, which keys each item reads,
// which decode tokens are split over key ranges (flash-decoding) to fill the GPU. Kernels only
// follow the plan (shaders/lib/attention_plan.wgsl), so one dispatch serves tokens of many
// sequences at different positions.
//
// Per layer, after the QKV matmul:
//   ropeKvWriteOp   rotates q in place in `qkv`, writes rotated k and v into the layer's pages
//   attentionOps    [decode items, prefill items, combine]; each is skipped when the step has none
import { bindGroup, grid, storageBuffer, writeBuffer, type AttentionGroup, type AttentionWork, type Dispatch } from '../../gpu/buffers.js';
import { KERNEL_PARAMS } from '../../gpu/kernel-params.js';
import { paramsBuffer } from '../../gpu/params.js';
import type { Gpu } from '../../gpu/device.js';
import type { ModelConfig } from '../../model/config.js';
import type { OpContext } from './context.js';

export type AttentionConfig = Pick<ModelConfig, 'numHeads' | 'numKvHeads' | 'headDim' | 'slidingWindow'>;

/** How a layer's K/V pools are laid out (lib/kv_pages.wgsl). */
export interface KvLayout {
  /** Positions per page (a power of two, at least 16). */
  pageSize: number;
  /** Store f32 instead of f16 pairs. */
  f32: boolean;
  /** Page-table row length: blocks a sequence may hold. */
  maxBlocks: number;
}

const ROPE_WG = 64;
const NO_PART = 0xffffffff;
const HEADER_WORDS = 64; // 256 bytes: every section starts storage-offset aligned
const ITEM_WORDS = 8;
const COMBINE_WORDS = 4;

function pow2Floor(n: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(1, n)));
}

/** Keys per tile: divides the page, keeps two f32 tiles within 16 KiB of workgroup memory. */
export function kvTile(pageSize: number, headDim: number): number {
  return Math.min(pageSize, 32, pow2Floor(2048 / headDim));
}

/** Bytes of one K (or V) pool page: every kv head's `pageSize` positions. */
export function kvPageBytes(cfg: Pick<ModelConfig, 'numKvHeads' | 'headDim'>, kv: Pick<KvLayout, 'pageSize' | 'f32'>): number {
  return cfg.numKvHeads * kv.pageSize * cfg.headDim * (kv.f32 ? 4 : 2);
}

export function checkAttentionShape(cfg: AttentionConfig, kv: Pick<KvLayout, 'pageSize'>, label = 'attention'): void {
  const { numHeads: nq, numKvHeads: nkv, headDim: d } = cfg;
  if (nq % nkv !== 0) throw new Error(`${label}: ${nq} query heads are not a multiple of ${nkv} kv heads`);
  if (![16, 32, 64, 128].includes(d)) throw new Error(`${label}: head_dim ${d} must be 16, 32, 64 or 128`);
  if (!(kv.pageSize >= 16 && (kv.pageSize & (kv.pageSize - 1)) === 0)) {
    throw new Error(`${label}: KV page size ${kv.pageSize} must be a power of two, at least 16`);
  }
}

/** Shapes of the two attention kernels (decode: one token per item; prefill: BQ tokens). */
export function attentionVariants(cfg: AttentionConfig, kv: Pick<KvLayout, 'pageSize'>) {
  const G = cfg.numHeads / cfg.numKvHeads;
  const DV = cfg.headDim / 4;
  const TK = kvTile(kv.pageSize, cfg.headDim);
  const decodeLanes = Math.min(16, TK, DV, pow2Floor(128 / G));
  const bq = Math.max(1, pow2Floor(64 / G));
  return {
    tile: TK,
    decode: { G, BQ: 1, LANES: decodeLanes, TK },
    prefill: { G, BQ: bq, LANES: 2, TK },
  };
}

export interface RopeKvWriteArgs {
  /** TokInfo [T] (positions and sequence slots). */
  toks: GPUBuffer;
  /** f32 [T][(nq + 2 nkv) d]; q heads are rotated in place. */
  qkv: GPUBuffer;
  /** ropeTable(cfg, context): f32 [context][d/2][2]. */
  rope: GPUBuffer;
  /** This layer's page table u32 [seqs][maxBlocks] and pools. */
  table: GPUBuffer;
  kpool: GPUBuffer;
  vpool: GPUBuffer;
  cfg: Pick<ModelConfig, 'numHeads' | 'numKvHeads' | 'headDim'>;
  kv: KvLayout;
  label: string;
}

/** RoPE on q (in place) and k, and the write of k and v into the layer's pages. One dispatch. */
export function ropeKvWriteOp(ctx: OpContext, a: RopeKvWriteArgs): Dispatch {
  const { numHeads: nq, numKvHeads: nkv, headDim: d } = a.cfg;
  if (d % 4 !== 0) throw new Error(`${a.label}: head_dim ${d} must be a multiple of 4`);
  const pipeline = ctx.shaders.pipeline({
    shader: 'rope_kv_write',
    defines: { WG: ROPE_WG, D: d, PAGE: a.kv.pageSize },
    flags: a.kv.f32 ? ['KV_F32'] : [],
  });
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.rope_kv_write, { nq, nkv, max_blocks: a.kv.maxBlocks }, `${a.label}.params`);
  const perToken = (nq + 2 * nkv) * (d / 4);
  return {
    label: a.label,
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, [ctx.step, params, a.toks, a.qkv, a.rope, a.table, a.kpool, a.vpool], a.label),
    groups: (s) => grid(Math.ceil((s.tokens * perToken) / ROPE_WG)),
  };
}

/** A run of consecutive tokens of one sequence in a step. */
export interface AttentionEntry {
  /** Index of the first token in the step. */
  tok0: number;
  ntok: number;
  /** Sequence slot (page-table row). */
  seq: number;
  /** Position of the first token. */
  pos0: number;
}

export interface AttentionPlanLimits {
  /** Sequence slots: the most entries a step has. */
  seqs: number;
  /** Tokens a step holds. */
  tokens: number;
  /** Workgroups a step's decode attention aims for (≈ a few per compute unit). Default 256. */
  targetWorkgroups?: number;
}

/**
 * Fewest keys a split of a decode token gets: below that one workgroup per kv head reads them
 * faster than a second dispatch (the combine) costs.
 */
const MIN_SPLIT_KEYS = 1024;

/**
 * The attention work of one layer type (sliding or full) for the current step, built on the host
 * and written to one storage buffer: work items for the decode and the prefill kernel, and the
 * combine entries of split decode tokens. Every layer of the type shares it.
 */
export class AttentionPlan {
  readonly buffer: GPUBuffer;
  readonly decodeCap: number;
  readonly prefillCap: number;
  readonly combineCap: number;
  readonly partialCap: number;
  readonly decodeOffset: number;
  readonly prefillOffset: number;
  readonly combineOffset: number;
  readonly counts: AttentionWork = { decode: 0, prefill: 0, combine: 0 };
  private readonly words: Uint32Array;
  private readonly variants: ReturnType<typeof attentionVariants>;
  private readonly targetItems: number;
  private used = HEADER_WORDS;

  constructor(
    private readonly gpu: Gpu,
    readonly name: string,
    readonly cfg: AttentionConfig,
    readonly sliding: boolean,
    kv: Pick<KvLayout, 'pageSize'>,
    limits: AttentionPlanLimits,
  ) {
    checkAttentionShape(cfg, kv, `attention plan ${name}`);
    this.variants = attentionVariants(cfg, kv);
    this.targetItems = Math.max(1, Math.ceil((limits.targetWorkgroups ?? 256) / cfg.numKvHeads));
    this.partialCap = Math.max(2 * this.targetItems, limits.seqs);
    this.decodeCap = limits.seqs + this.partialCap;
    this.prefillCap = Math.ceil(limits.tokens / this.variants.prefill.BQ) + limits.seqs;
    this.combineCap = limits.seqs;
    const align = (n: number) => Math.ceil(n / 64) * 64;
    this.decodeOffset = HEADER_WORDS;
    this.prefillOffset = this.decodeOffset + align(this.decodeCap * ITEM_WORDS);
    this.combineOffset = this.prefillOffset + align(this.prefillCap * ITEM_WORDS);
    const total = this.combineOffset + align(this.combineCap * COMBINE_WORDS);
    this.words = new Uint32Array(total);
    this.buffer = storageBuffer(gpu, total * 4, `attention_plan.${name}`);
  }

  /** Keys [first, pos + 1) visible from position pos on this layer type. */
  private firstKey(pos: number): number {
    return this.sliding ? Math.max(0, pos + 1 - this.cfg.slidingWindow) : 0;
  }

  /**
   * Plans the step: one-token entries become decode items, split over key ranges (of at least
   * MIN_SPLIT_KEYS) when the step has few of them, so the GPU fills up; longer entries become
   * prefill items of up to BQ tokens.
   */
  build(entries: readonly AttentionEntry[]): void {
    const w = this.words;
    const TK = this.variants.tile;
    const BQ = this.variants.prefill.BQ;
    let nDec = 0;
    for (const e of entries) if (e.ntok === 1) nDec++;
    const splitTarget = nDec ? Math.ceil(this.targetItems / nDec) : 1;
    let dec = 0;
    let pre = 0;
    let comb = 0;
    let parts = 0;
    const item = (at: number, tok0: number, ntok: number, seq: number, pos0: number, k0: number, k1: number, part: number, flags: number) => {
      w[at] = tok0;
      w[at + 1] = ntok;
      w[at + 2] = seq;
      w[at + 3] = pos0;
      w[at + 4] = k0;
      w[at + 5] = k1;
      w[at + 6] = part;
      w[at + 7] = flags;
    };
    for (const e of entries) {
      if (e.ntok === 1) {
        const first = this.firstKey(e.pos0);
        const end = e.pos0 + 1;
        const t0 = Math.floor(first / TK);
        const tiles = Math.ceil(end / TK) - t0;
        let S = Math.min(tiles, splitTarget, Math.ceil((end - first) / MIN_SPLIT_KEYS));
        if (S > 1 && parts + S > this.partialCap) S = Math.max(1, this.partialCap - parts);
        const per = Math.ceil(tiles / S);
        S = Math.ceil(tiles / per);
        if (S === 1) {
          item(this.decodeOffset + ITEM_WORDS * dec++, e.tok0, 1, e.seq, e.pos0, first, end, NO_PART, 1);
          continue;
        }
        for (let s = 0; s < S; s++) {
          const k0 = Math.max(first, (t0 + s * per) * TK);
          const k1 = Math.min(end, (t0 + (s + 1) * per) * TK);
          item(this.decodeOffset + ITEM_WORDS * dec++, e.tok0, 1, e.seq, e.pos0, k0, k1, parts + s, s === 0 ? 1 : 0);
        }
        const c = this.combineOffset + COMBINE_WORDS * comb++;
        w[c] = e.tok0;
        w[c + 1] = parts;
        w[c + 2] = S;
        w[c + 3] = 0;
        parts += S;
      } else {
        for (let i = 0; i < e.ntok; i += BQ) {
          const n = Math.min(BQ, e.ntok - i);
          const pos = e.pos0 + i;
          item(this.prefillOffset + ITEM_WORDS * pre++, e.tok0 + i, n, e.seq, pos, this.firstKey(pos), pos + n, NO_PART, 1);
        }
      }
    }
    if (dec > this.decodeCap || pre > this.prefillCap || comb > this.combineCap) {
      throw new Error(`attention plan ${this.name}: ${dec}/${pre}/${comb} items exceed ${this.decodeCap}/${this.prefillCap}/${this.combineCap}`);
    }
    this.counts.decode = dec;
    this.counts.prefill = pre;
    this.counts.combine = comb;
    w[0] = dec;
    w[1] = pre;
    w[2] = comb;
    this.used = comb ? this.combineOffset + comb * COMBINE_WORDS : pre ? this.prefillOffset + pre * ITEM_WORDS : this.decodeOffset + dec * ITEM_WORDS;
  }

  /** Writes the planned words (one writeBuffer). */
  write(): void {
    writeBuffer(this.gpu, this.buffer, 0, this.words.subarray(0, this.used));
  }

  /** The planned items, for tests: [tok0, ntok, seq, pos0, key0, key1, part, flags] each. */
  items(kind: 'decode' | 'prefill'): number[][] {
    const off = kind === 'decode' ? this.decodeOffset : this.prefillOffset;
    return Array.from({ length: this.counts[kind] }, (_, i) => Array.from(this.words.subarray(off + i * ITEM_WORDS, off + (i + 1) * ITEM_WORDS)));
  }

  /** The layer group whose StepShape.attention entry this plan's counts fill. */
  get group(): AttentionGroup {
    return this.sliding ? 'sliding' : 'full';
  }

  destroy(): void {
    this.buffer.destroy();
  }
}

/** Split partials, shared by every layer of a forward (layers run one after another). */
export interface AttentionScratch {
  /** f32 [partials][nq][d]: unnormalised partial outputs. */
  partO: GPUBuffer;
  /** f32 [partials][nq][2]: (m, l) per partial. */
  partML: GPUBuffer;
}

export function attentionScratch(gpu: Gpu, cfg: AttentionConfig, partials: number): AttentionScratch {
  const rows = Math.max(1, partials) * cfg.numHeads;
  return {
    partO: storageBuffer(gpu, rows * cfg.headDim * 4, 'attn.part_o'),
    partML: storageBuffer(gpu, rows * 2 * 4, 'attn.part_ml'),
  };
}

export interface AttentionArgs {
  plan: AttentionPlan;
  /** f32 [T][(nq + 2 nkv) d], q already rotated by ropeKvWriteOp. */
  qkv: GPUBuffer;
  /** This layer's page table and pools, this step's keys/values already written. */
  table: GPUBuffer;
  kpool: GPUBuffer;
  vpool: GPUBuffer;
  /** f32 [nq] sink logits (not scaled). */
  sinks: GPUBuffer;
  /** f32 [T][nq d] output, heads concatenated. */
  attn: GPUBuffer;
  scratch: AttentionScratch;
  kv: KvLayout;
  label: string;
}

/** Attention for one layer: the decode kernel, the prefill kernel and the combine (each skipped when idle). */
export function attentionOps(ctx: OpContext, a: AttentionArgs): Dispatch[] {
  const plan = a.plan;
  const { numHeads: nq, numKvHeads: nkv, headDim: d, slidingWindow: window } = plan.cfg;
  const v = attentionVariants(plan.cfg, a.kv);
  const params = (section: number, countIdx: number, label: string) =>
    paramsBuffer(
      ctx.gpu,
      KERNEL_PARAMS.attention,
      { nq, nkv, sliding: plan.sliding ? 1 : 0, window, max_blocks: a.kv.maxBlocks, section, count_idx: countIdx, scale: 1 / Math.sqrt(d) },
      label,
    );
  const flags = a.kv.f32 ? ['KV_F32'] : [];
  const kernel = (variant: 'decode' | 'prefill', section: number, countIdx: number): Dispatch => {
    const s = v[variant];
    const pipeline = ctx.shaders.pipeline({ shader: 'attention', defines: { D: d, G: s.G, BQ: s.BQ, LANES: s.LANES, TK: s.TK, PAGE: a.kv.pageSize }, flags });
    const label = `${a.label}.${variant}`;
    const p = params(section, countIdx, `${label}.params`);
    const bufs = [p, plan.buffer, a.qkv, a.table, a.kpool, a.vpool, a.sinks, a.attn, a.scratch.partO, a.scratch.partML];
    return {
      label,
      pipeline,
      bindGroup: bindGroup(ctx.gpu, pipeline, bufs, label),
      groups: (st) => {
        const n = st.attention?.[plan.group]?.[variant] ?? 0;
        return n ? grid(n, 1, nkv) : null;
      },
    };
  };
  const combine = ctx.shaders.pipeline({ shader: 'attention_combine', defines: { D: d } });
  const headsPerGroup = 64 / (d / 4);
  const cp = params(plan.combineOffset, 2, `${a.label}.combine.params`);
  return [
    kernel('decode', plan.decodeOffset, 0),
    kernel('prefill', plan.prefillOffset, 1),
    {
      label: `${a.label}.combine`,
      pipeline: combine,
      bindGroup: bindGroup(ctx.gpu, combine, [cp, plan.buffer, a.scratch.partO, a.scratch.partML, a.attn], `${a.label}.combine`),
      groups: (st) => {
        const n = st.attention?.[plan.group]?.combine ?? 0;
        return n ? grid(n, 1, Math.ceil(nq / headsPerGroup)) : null;
      },
    },
  ];
}
