// Factories for the mixture-of-experts kernels: router top-k + softmax, MXFP4 mlp1 + SwiGLU, and
// MXFP4 mlp2 + weighted combine + residual add. Expert ids travel GPU-side in `routing`; nothing is
// read back. Buffer layouts (all little-endian, T = tokens in the forward, k = topK, E, H, I):
//   logits   f32 [T][E]                 router logits, bias included (matmulOp)
//   routing  u32 [T][k][2]              (expert id, bitcast f32 weight), descending logit order
//   xn       f32 [T][H]                 post-attention RMSNorm output
//   blocks1  u8  [E][2I][H/32][16]      checkpoint mlp1 / gate_up_proj blocks, uploaded as is
//   scales1  u8  [E][2I][H/32]          E8M0 scale bytes, uploaded as is
//   bias1    f32 [E][2I]                gate/up interleaved like the rows
//   h        f32 [T][k][I]              SwiGLU output per (token, slot)
//   blocks2  u8  [E][H][I/32][16], scales2 u8 [E][H][I/32], bias2 f32 [E][H]
//   x        f32 [T][H]                 residual stream, updated in place by moeDownOp
// Every kernel reads the Step buffer (binding 0) for T; grids are functions of the StepShape.
import { bindGroup, grid, storageBuffer, type Dispatch, type StepShape } from '../../gpu/buffers.js';
import { KERNEL_PARAMS } from '../../gpu/kernel-params.js';
import { paramsBuffer } from '../../gpu/params.js';
import type { Gpu } from '../../gpu/device.js';
import type { OpContext } from './context.js';
import { moeGrouped, sgmatMoe } from '../dispatch-policy.js';
import { sgmatMoeOps, sgmatOf } from './sgmat.js';
import { moeGatherOp, type MoeGroupBuffers, type MoeGroupedArgs } from './moe-shared.js';

export { moeGatherOp, type MoeGroupBuffers, type MoeGroupedArgs } from './moe-shared.js';

/** Largest k the top-k kernel supports. */
export const MAX_TOP_K = 8;

export interface TopkArgs {
  /** f32 [T][E] router logits. */
  logits: GPUBuffer;
  /** u32 [T][k][2] output. */
  routing: GPUBuffer;
  numExperts: number;
  topK: number;
  label: string;
}

const TOPK_WG = 64;

/** Per token: the k largest logits (ties to the lower index), softmax over those k. One workgroup per token. */
export function topkOp(ctx: OpContext, a: TopkArgs): Dispatch {
  const E = a.numExperts;
  checkTopK(a.label, E, a.topK);
  // One pipeline for every E <= 256 (4 logits per thread); larger E gets more per thread.
  const ept = Math.max(4, Math.ceil(E / TOPK_WG));
  if (ept > 32) throw new Error(`${a.label}: ${E} experts exceed the top-k kernel's ${32 * TOPK_WG}`);
  const pipeline = ctx.shaders.pipeline({ shader: 'topk_softmax', defines: { WG: TOPK_WG, EPT: ept, KMAX: MAX_TOP_K } });
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.topk_softmax, { e: E, k: a.topK }, `${a.label}.params`);
  return {
    label: a.label,
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, [ctx.step, params, a.logits, a.routing], a.label),
    groups: (s) => grid(s.tokens),
  };
}

/** Optional tuning of the MXFP4 matvec kernels (tests use it to cover every reduction shape). */
export interface MoeTuning {
  /** Lanes per weight row, a power of two (default: the adapter's subgroup size, clamped to 4..32). */
  team?: number;
  /** Threads per workgroup (default 256, capped by the adapter). */
  wg?: number;
}

export interface MoeUpArgs extends MoeTuning {
  /** f32 [T][H]. */
  xn: GPUBuffer;
  /** u32 [T][k][2] from topkOp. */
  routing: GPUBuffer;
  /** MXFP4 mlp1 blocks u8 [E][2I][H/32][16] and scales u8 [E][2I][H/32]. */
  blocks: GPUBuffer;
  scales: GPUBuffer;
  /** f32 [E][2I]. */
  bias: GPUBuffer;
  /** f32 [T][k][I] output. */
  h: GPUBuffer;
  hidden: number;
  intermediate: number;
  topK: number;
  numExperts: number;
  /** The buffers hold experts [firstExpert, firstExpert + expertCount) (one shard; default all). */
  firstExpert?: number;
  expertCount?: number;
  /**
   * Decode path: pick the experts from these router logits (f32 [T][E]) in every workgroup and
   * write `routing` for mlp2, instead of reading `routing` (saves the top-k dispatch).
   */
  topkLogits?: GPUBuffer;
  swigluLimit: number;
  label: string;
}

/** h[t][s] = SwiGLU(W1[e]·xn[t] + b1[e]) for each token t and slot s (e = routing[t][s].id). */
export function moeUpOp(ctx: OpContext, a: MoeUpArgs): Dispatch {
  const { hidden: H, intermediate: I, topK: k, numExperts: E } = a;
  const e0 = a.firstExpert ?? 0;
  const ec = a.expertCount ?? E;
  checkTopK(a.label, E, k);
  checkMultiple(a.label, 'hidden', H);
  checkBuffers(ctx, a.label, { blocks: [a.blocks, (ec * 2 * I * H) / 2], scales: [a.scales, (ec * 2 * I * H) / 32], bias: [a.bias, ec * 2 * I * 4] });
  const { wg, team } = tuning(ctx, a, 2);
  const outs = wg / team / 2;
  // every workgroup finds its token's top-k: within each subgroup (no barriers) where subgroups
  // run and each lane holds at most 32 experts, else over the workgroup
  const eps = Math.ceil(E / Math.max(1, ctx.gpu.subgroupMinSize));
  const inSubgroups = ctx.shaders.useSubgroups && eps <= 32;
  const topk: Record<string, number> = a.topkLogits ? { EPT: Math.max(1, Math.ceil(E / wg)), EPS: eps, KMAX: MAX_TOP_K } : {};
  if (a.topkLogits && E > 32 * wg) throw new Error(`${a.label}: ${E} experts exceed the top-k of ${32 * wg}`);
  const flags = a.topkLogits ? ['TOPK', ...(inSubgroups ? ['TOPK_SG'] : [])] : [];
  const pipeline = ctx.shaders.pipeline({ shader: 'moe_up_swiglu', defines: { WG: wg, TEAM: team, ...topk }, flags });
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.moe_up_swiglu, { h: H, i: I, k, e: E, limit: a.swigluLimit, e0, ec }, `${a.label}.params`);
  const bufs = a.topkLogits
    ? [ctx.step, params, a.xn, a.topkLogits, a.blocks, a.scales, a.bias, a.h, a.routing]
    : [ctx.step, params, a.xn, a.routing, a.blocks, a.scales, a.bias, a.h];
  const outGroups = Math.ceil(I / outs);
  const perExpert = (2 * I * H) / 2 + (2 * I * H) / 32 + 2 * I * 4;
  return {
    label: a.label,
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, bufs, a.label),
    // an expert's mlp1 per (token, slot) routed to this shard
    weightBytes: (s, r) => perExpert * countIn(r.ids(a.routing), s.tokens * k, e0, ec),
    macs: (s, r) => 2 * I * H * countIn(r.ids(a.routing), s.tokens * k, e0, ec),
    groups: (s) => grid(outGroups * k, 1, tokenDim(a.label, s)),
  };
}

export interface MoeDownArgs extends MoeTuning {
  /** f32 [T][k][I] from moeUpOp. */
  h: GPUBuffer;
  routing: GPUBuffer;
  /** MXFP4 mlp2 blocks u8 [E][H][I/32][16] and scales u8 [E][H][I/32]. */
  blocks: GPUBuffer;
  scales: GPUBuffer;
  /** f32 [E][H]. */
  bias: GPUBuffer;
  /** f32 [T][H] residual stream, updated in place. */
  x: GPUBuffer;
  hidden: number;
  intermediate: number;
  topK: number;
  numExperts: number;
  /** The buffers hold experts [firstExpert, firstExpert + expertCount) (one shard; default all). */
  firstExpert?: number;
  expertCount?: number;
  /** Teams per output row (slots are split among them); default: largest power of two <= min(k, 4). */
  split?: number;
  label: string;
}

/** x[t] += Σ_s w_s·(W2[e_s]·h[t][s] + b2[e_s]). */
export function moeDownOp(ctx: OpContext, a: MoeDownArgs): Dispatch {
  const { hidden: H, intermediate: I, topK: k, numExperts: E } = a;
  const e0 = a.firstExpert ?? 0;
  const ec = a.expertCount ?? E;
  checkTopK(a.label, E, k);
  checkMultiple(a.label, 'intermediate', I);
  checkBuffers(ctx, a.label, { blocks: [a.blocks, (ec * H * I) / 2], scales: [a.scales, (ec * H * I) / 32], bias: [a.bias, ec * H * 4] });
  const split = a.split ?? pow2Floor(Math.min(k, 4));
  if (!isPow2(split)) throw new Error(`${a.label}: split ${split} is not a power of two`);
  const { wg, team } = tuning(ctx, a, split);
  const rows = wg / team / split;
  const pipeline = ctx.shaders.pipeline({ shader: 'moe_down_acc', defines: { WG: wg, TEAM: team, SPLIT: split } });
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.moe_down_acc, { h: H, i: I, k, e: E, e0, ec }, `${a.label}.params`);
  const bufs = [ctx.step, params, a.h, a.routing, a.blocks, a.scales, a.bias, a.x];
  const rowGroups = Math.ceil(H / rows);
  const perExpert = (H * I) / 2 + (H * I) / 32 + H * 4;
  return {
    label: a.label,
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, bufs, a.label),
    weightBytes: (s, r) => perExpert * countIn(r.ids(a.routing), s.tokens * k, e0, ec),
    macs: (s, r) => H * I * countIn(r.ids(a.routing), s.tokens * k, e0, ec),
    groups: (s) => grid(rowGroups, 1, tokenDim(a.label, s)),
  };
}

/**
 * Tile of the grouped GEMMs (lib/gemm.wgsl): BM rows x BN columns, K slices of one MXFP4 block;
 * 64 invocations, row slices of 8 (BM / TM), (BM + BN) x 33 f32 = 12.7 KiB of workgroup storage.
 * 64 rows: a 512-token prefill chunk averages 64 rows per expert on gpt-oss-20b (top-4 of 32).
 */
export const GEMM_TILE = { BM: 64, BN: 32, BK: 32, TM: 8, TN: 4 } as const;


export function moeGroupBytes(tokens: number, c: { numExperts: number; expertsPerToken: number; hiddenSize: number }): number {
  const n = tokens * c.expertsPerToken;
  const maxTiles = Math.ceil(n / GEMM_TILE.BM) + c.numExperts;
  return 4 * (2 * (c.numExperts + 1) + 2 * maxTiles + 2 * n + n * c.hiddenSize);
}

export function allocateMoeGroup(gpu: Gpu, tokens: number, c: { numExperts: number; expertsPerToken: number; hiddenSize: number }): MoeGroupBuffers {
  const n = tokens * c.expertsPerToken;
  const maxTiles = Math.ceil(n / GEMM_TILE.BM) + c.numExperts;
  const tilesOffset = 2 * (c.numExperts + 1);
  return {
    meta: storageBuffer(gpu, 4 * (tilesOffset + 2 * maxTiles), 'moe.meta'),
    order: storageBuffer(gpu, 4 * n, 'moe.order'),
    dst: storageBuffer(gpu, 4 * n, 'moe.dst'),
    y: storageBuffer(gpu, 4 * n * c.hiddenSize, 'moe.y'),
    tilesOffset,
  };
}


/**
 * The MoE for many tokens at once: group the (token, slot) pairs by expert (moe_route), per expert
 * shard a grouped GEMM for mlp1 + SwiGLU and one for mlp2 + bias (each expert's weights read once
 * per tile of BM rows), then x += the weighted outputs (moe_gather).
 */
export function moeGroupedOps(ctx: OpContext, a: MoeGroupedArgs): Dispatch[] {
  const { hidden: H, intermediate: I, topK: k, numExperts: E } = a;
  checkTopK(a.label, E, k);
  checkMultiple(a.label, 'hidden', H);
  checkMultiple(a.label, 'intermediate', I);
  if (E > 1024) throw new Error(`${a.label}: the routing kernel handles at most 1024 experts (got ${E})`);
  const on = a.minTokens === undefined ? moeGrouped : (s: StepShape) => s.tokens >= a.minTokens!;
  // the subgroup-matrix GEMMs (64-row tiles) where the self-check passed and the scales allow
  const sg = sgmatOf(ctx);
  if (sg?.moe) return sgmatMoeOps(ctx, a, sg.shape, a.minTokens === undefined ? (s) => sgmatMoe(s, true) : on);
  const T = GEMM_TILE;
  const g = a.group;
  const route = ctx.shaders.pipeline({ shader: 'moe_route', defines: { WG: 256, BM: T.BM } });
  const routeParams = paramsBuffer(ctx.gpu, KERNEL_PARAMS.moe_route, { k, e: E, tiles_off: g.tilesOffset }, `${a.label}.route.params`);
  const ops: Dispatch[] = [
    {
      label: `${a.label}.route`,
      pipeline: route,
      bindGroup: bindGroup(ctx.gpu, route, [ctx.step, routeParams, a.routing, g.meta, g.order, g.dst], `${a.label}.route`),
      when: on,
      groups: [1, 1, 1],
    },
  ];
  const gemm = (up: boolean, e: MoeGroupedArgs['experts'][number]): Dispatch => {
    const n = up ? 2 * I : H;
    const pipeline = ctx.shaders.pipeline({ shader: 'moe_gemm', defines: { ...T }, flags: up ? ['UP'] : [] });
    const params = paramsBuffer(
      ctx.gpu,
      KERNEL_PARAMS.moe_gemm,
      { kdim: up ? H : I, n, k, e: E, e0: e.first, ec: e.count, tiles_off: g.tilesOffset, limit: a.swigluLimit },
      `${a.label}.gemm.params`,
    );
    const bufs = up
      ? [params, g.meta, a.xn, e.mlp1Blocks, e.mlp1Scales, e.mlp1Bias, a.h, g.order]
      : [params, g.meta, a.h, e.mlp2Blocks, e.mlp2Scales, e.mlp2Bias, g.y];
    const shard = a.experts.length > 1 ? `.${e.first}` : '';
    const label = `${a.label}.${up ? 'mlp1' : 'mlp2'}_gemm${shard}`;
    const perExpert = up ? (2 * I * H) / 2 + (2 * I * H) / 32 + 2 * I * 4 : (H * I) / 2 + (H * I) / 32 + H * 4;
    return {
      label,
      pipeline,
      bindGroup: bindGroup(ctx.gpu, pipeline, bufs, label),
      // an expert's matrix once per tile of BM of its rows
      weightBytes: (s, r) => perExpert * tilesIn(r.ids(a.routing), s.tokens * k, e.first, e.count, T.BM),
      // each tile's rows rounded up to a row slice (lib/gemm gemm_live skips the rest)
      macs: (s, r) => n * (up ? H : I) * sliceRowsIn(r.ids(a.routing), s.tokens * k, e.first, e.count, T.BM / T.TM),
      // an upper bound on this shard's tiles: its rows in BM-row tiles, plus one partial tile per expert
      when: on,
      groups: (s) => [Math.ceil((s.tokens * k) / T.BM) + e.count, Math.ceil(n / T.BN), 1],
    };
  };
  ops.push(...a.experts.map((e) => gemm(true, e)), ...a.experts.map((e) => gemm(false, e)));
  ops.push(moeGatherOp(ctx, { label: a.label, hidden: H, topK: k, routing: a.routing, group: g, x: a.x }, on));
  return ops;
}


export interface Mxfp4DecodeArgs {
  /** `count` blocks of 16 bytes. */
  blocks: GPUBuffer;
  /** `count` scale bytes. */
  scales: GPUBuffer;
  /** f32 [count * 32] output. */
  out: GPUBuffer;
  count: number;
}

/** Test kernel: decodes MXFP4 to f32 through the same WGSL functions as the MoE matvecs. */
export function mxfp4DecodeOp(ctx: OpContext, a: Mxfp4DecodeArgs): Dispatch {
  const WG = 64;
  const pipeline = ctx.shaders.pipeline({ shader: 'mxfp4_decode_check', defines: { WG } });
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.mxfp4_decode_check, { blocks: a.count }, 'mxfp4_decode.params');
  const groups = grid(Math.ceil((a.count * 4) / WG));
  return {
    label: 'mxfp4_decode',
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, [params, a.blocks, a.scales, a.out], 'mxfp4_decode'),
    groups,
  };
}

/** Tiles of `bm` rows the experts [e0, e0 + ec) take for the first n ids. */
function tilesIn(ids: Uint32Array, n: number, e0: number, ec: number, bm: number): number {
  const rows = new Uint32Array(ec);
  for (let i = 0; i < n; i++) if (ids[i]! >= e0 && ids[i]! < e0 + ec) rows[ids[i]! - e0]!++;
  return rows.reduce((t, r) => t + Math.ceil(r / bm), 0);
}

/** The rows of the first n ids per expert of [e0, e0 + ec), each expert's rounded up to a multiple of `slice`. */
function sliceRowsIn(ids: Uint32Array, n: number, e0: number, ec: number, slice: number): number {
  const rows = new Uint32Array(ec);
  for (let i = 0; i < n; i++) if (ids[i]! >= e0 && ids[i]! < e0 + ec) rows[ids[i]! - e0]!++;
  return rows.reduce((t, r) => t + Math.ceil(r / slice) * slice, 0);
}

/** How many of the first n ids fall in [e0, e0 + ec). */
function countIn(ids: Uint32Array, n: number, e0: number, ec: number): number {
  let c = 0;
  for (let i = 0; i < n; i++) if (ids[i]! >= e0 && ids[i]! < e0 + ec) c++;
  return c;
}

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

function pow2Floor(n: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(1, n)));
}

function checkTopK(label: string, E: number, k: number): void {
  if (!Number.isInteger(k) || k < 1 || k > MAX_TOP_K) throw new Error(`${label}: topK ${k} is outside 1..${MAX_TOP_K}`);
  if (!Number.isInteger(E) || E < k) throw new Error(`${label}: ${E} experts cannot supply top-${k}`);
}

function checkMultiple(label: string, what: string, n: number): void {
  if (!Number.isInteger(n) || n <= 0 || n % 32 !== 0) throw new Error(`${label}: ${what} ${n} is not a positive multiple of 32 (the MXFP4 block)`);
}

function checkBuffers(ctx: OpContext, label: string, need: Record<string, [GPUBuffer, number]>): void {
  const maxBinding = ctx.gpu.device.limits.maxStorageBufferBindingSize;
  for (const [name, [buf, bytes]] of Object.entries(need)) {
    if (buf.size < bytes) throw new Error(`${label}: ${name} holds ${buf.size} bytes, needs ${bytes}`);
    if (buf.size > maxBinding) {
      throw new Error(`${label}: ${name} (${buf.size} bytes) exceeds maxStorageBufferBindingSize ${maxBinding}; split the layer`);
    }
  }
}

/** Workgroup size and lanes per row; `teamsPerUnit` teams must fit (2 for a gate/up pair). */
function tuning(ctx: OpContext, t: MoeTuning, teamsPerUnit: number): { wg: number; team: number } {
  const wg = t.wg ?? Math.min(256, ctx.wg);
  const team = t.team ?? Math.min(32, Math.max(4, pow2Floor(ctx.gpu.subgroupMaxSize)));
  if (!isPow2(wg) || !isPow2(team)) throw new Error(`MoE tuning: wg ${wg} and team ${team} must be powers of two`);
  if (wg % (team * teamsPerUnit) !== 0) throw new Error(`MoE tuning: wg ${wg} must hold ${teamsPerUnit} teams of ${team}`);
  return { wg, team };
}

function tokenDim(label: string, s: StepShape): number {
  if (s.tokens > 65535) throw new Error(`${label}: ${s.tokens} tokens exceed one grid dimension; chunk the forward`);
  return Math.max(1, s.tokens);
}
