// Factories for the MoE of small steps (2 to ~128 tokens): the (token, slot) assignments grouped by
// expert in parallel (moe_route_parallel), then per expert shard an expert-grouped MXFP4 matvec for
// mlp1 + SwiGLU and one for mlp2 + bias (moe_grouped_matvec: each used expert's rows decoded once
// per pass of up to SMALLM_PASS_ROWS of its rows, no arithmetic for absent rows), then moe_gather
// adds the routing-weighted outputs to x. Buffer layouts as in ./moe.ts; h is [T·k][I] and y
// [T·k][H] at expert-sorted rows, like the grouped GEMM path's.
import { bindGroup, grid, storageBuffer, type Dispatch, type StepRouting, type StepShape } from '../../gpu/buffers.js';
import { KERNEL_PARAMS } from '../../gpu/kernel-params.js';
import { paramsBuffer } from '../../gpu/params.js';
import type { Gpu } from '../../gpu/device.js';
import type { OpContext } from './context.js';
import { GEMM_TILE, MAX_TOP_K, moeGatherOp, type MoeGroupBuffers } from './moe.js';

/** Rows (token, slot) of one expert that one pass of the grouped matvec stages and serves. */
export const SMALLM_PASS_ROWS = 16;

const ROUTE_WG = 256;
/** Workgroup words the routing bitmask may take (16 KiB; lavapipe has 32 KiB in all). */
const MASK_WORDS_MAX = 4096;

interface MoeDims {
  numExperts: number;
  expertsPerToken: number;
  hiddenSize: number;
}

/** The small-step MoE's scratch: moe_route_parallel's output (a superset of moe_route's), order, dst, y. */
export interface MoeSmallMBuffers extends MoeGroupBuffers {
  /** Word offset of the used-expert list in `meta`. */
  usedOffset: number;
  /** Most tokens a step may hold. */
  maxTokens: number;
}

function layout(tokens: number, c: MoeDims) {
  const n = tokens * c.expertsPerToken;
  const maxTiles = Math.ceil(n / GEMM_TILE.BM) + c.numExperts;
  const tilesOffset = 2 * (c.numExperts + 1);
  const usedOffset = tilesOffset + 2 * maxTiles;
  return { n, tilesOffset, usedOffset, metaWords: usedOffset + 2 * c.numExperts + 1 };
}

export function moeSmallMGroupBytes(tokens: number, c: MoeDims): number {
  const l = layout(tokens, c);
  return 4 * (l.metaWords + 2 * l.n + l.n * c.hiddenSize);
}

export function allocateMoeSmallM(gpu: Gpu, tokens: number, c: MoeDims): MoeSmallMBuffers {
  const l = layout(tokens, c);
  return {
    meta: storageBuffer(gpu, 4 * l.metaWords, 'moe_smallm.meta'),
    order: storageBuffer(gpu, 4 * l.n, 'moe_smallm.order'),
    dst: storageBuffer(gpu, 4 * l.n, 'moe_smallm.dst'),
    y: storageBuffer(gpu, 4 * l.n * c.hiddenSize, 'moe_smallm.y'),
    tilesOffset: l.tilesOffset,
    usedOffset: l.usedOffset,
    maxTokens: tokens,
  };
}

export interface MoeRouteParallelArgs {
  /** u32 [T][k][2] from the top-k. */
  routing: GPUBuffer;
  group: MoeSmallMBuffers;
  topK: number;
  numExperts: number;
  /** Steps outside [minTokens, group.maxTokens] skip the dispatch. Default 1. */
  minTokens?: number;
  label: string;
}

/** Groups the step's (token, slot) assignments by expert: one workgroup, no serial scan over them. */
export function moeRouteParallelOp(ctx: OpContext, a: MoeRouteParallelArgs): Dispatch {
  const { topK: k, numExperts: E } = a;
  checkTopK(a.label, E, k);
  const g = a.group;
  const maskWords = Math.ceil((g.maxTokens * k) / 32);
  if (E * maskWords > MASK_WORDS_MAX) {
    throw new Error(`${a.label}: ${E} experts x ${g.maxTokens} tokens x top-${k} exceed the routing mask (${MASK_WORDS_MAX} words); plan fewer tokens`);
  }
  const wg = Math.min(ROUTE_WG, ctx.wg);
  const pipeline = ctx.shaders.pipeline({
    shader: 'moe_route_parallel',
    defines: { WG: wg, E, EPT: Math.ceil(E / wg), MASKW: maskWords, BM: GEMM_TILE.BM },
  });
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.moe_route_parallel, { k, tiles_off: g.tilesOffset, used_off: g.usedOffset }, `${a.label}.params`);
  const on = stepIn(a.minTokens ?? 1, g.maxTokens);
  return {
    label: a.label,
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, [ctx.step, params, a.routing, g.meta, g.order, g.dst], a.label),
    groups: (s) => (on(s) ? [1, 1, 1] : null),
    weightBytes: () => 0,
    macs: () => 0,
  };
}

export interface ExpertShardBuffers {
  first: number;
  count: number;
  mlp1Blocks: GPUBuffer;
  mlp1Scales: GPUBuffer;
  mlp1Bias: GPUBuffer;
  mlp2Blocks: GPUBuffer;
  mlp2Scales: GPUBuffer;
  mlp2Bias: GPUBuffer;
}

export interface MoeSmallMArgs {
  /** f32 [T][H] normalised x. */
  xn: GPUBuffer;
  /** u32 [T][k][2] from the top-k. */
  routing: GPUBuffer;
  /** f32 [T·k][I]: SwiGLU outputs at sorted rows. */
  h: GPUBuffer;
  /** f32 [T][H]: x += the weighted expert outputs. */
  x: GPUBuffer;
  group: MoeSmallMBuffers;
  experts: readonly ExpertShardBuffers[];
  hidden: number;
  intermediate: number;
  topK: number;
  numExperts: number;
  swigluLimit: number;
  /** Steps of fewer tokens (or more than group.maxTokens) skip these dispatches. Default 1. */
  minTokens?: number;
  /** Rows per pass (4, 8, 12 or 16; default SMALLM_PASS_ROWS) and lanes per weight row (tests). */
  passRows?: number;
  team?: number;
  label: string;
}

/**
 * The small-step MoE: parallel routing, per shard the grouped matvecs for mlp1 + SwiGLU and for
 * mlp2 + bias, then the gather-accumulate into x. Returns [route, mlp1 per shard, mlp2 per shard, gather].
 */
export function moeSmallMOps(ctx: OpContext, a: MoeSmallMArgs): Dispatch[] {
  const { hidden: H, intermediate: I, topK: k, numExperts: E } = a;
  checkTopK(a.label, E, k);
  checkMultiple(a.label, 'hidden', H);
  checkMultiple(a.label, 'intermediate', I);
  const g = a.group;
  const min = a.minTokens ?? 1;
  const on = stepIn(min, g.maxTokens);
  const P = a.passRows ?? SMALLM_PASS_ROWS;
  if (!Number.isInteger(P) || P < 4 || P > 16 || P % 4 !== 0) throw new Error(`${a.label}: pass rows ${P} must be 4, 8, 12 or 16`);
  const team = a.team ?? defaultTeam(ctx);
  if (!isPow2(team) || team < 2) throw new Error(`${a.label}: team ${team} must be a power of two >= 2`);
  if (ctx.shaders.useSubgroups && team > ctx.gpu.subgroupMinSize) {
    throw new Error(`${a.label}: team ${team} exceeds the smallest subgroup (${ctx.gpu.subgroupMinSize})`);
  }
  // the portable reduction reuses the staging memory: WG <= 32 · TEAM
  const wg = Math.min(256, 32 * team, ctx.wg);
  const rowsPerGroup = wg / team;
  if (rowsPerGroup % 2 !== 0) throw new Error(`${a.label}: ${rowsPerGroup} rows per workgroup cannot hold gate/up pairs`);
  const ops: Dispatch[] = [moeRouteParallelOp(ctx, { routing: a.routing, group: g, topK: k, numExperts: E, minTokens: min, label: `${a.label}.route_parallel` })];

  const counts = (s: StepShape, r: StepRouting) => {
    const c = new Uint32Array(E);
    const ids = r.ids(a.routing);
    for (let i = 0; i < s.tokens * k; i++) c[Math.min(ids[i]!, E - 1)]!++;
    return c;
  };
  const matvec = (up: boolean, e: ExpertShardBuffers): Dispatch => {
    const n = up ? 2 * I : H;
    const kdim = up ? H : I;
    const pipeline = ctx.shaders.pipeline({ shader: 'moe_grouped_matvec', defines: { WG: wg, TEAM: team, P }, flags: up ? ['UP'] : [] });
    const params = paramsBuffer(
      ctx.gpu,
      KERNEL_PARAMS.moe_grouped_matvec,
      { kdim, n, k, e: E, e0: e.first, ec: e.count, used_off: g.usedOffset, limit: a.swigluLimit },
      `${a.label}.matvec.params`,
    );
    const bufs = up
      ? [params, g.meta, a.xn, e.mlp1Blocks, e.mlp1Scales, e.mlp1Bias, a.h, g.order]
      : [params, g.meta, a.h, e.mlp2Blocks, e.mlp2Scales, e.mlp2Bias, g.y];
    const shard = a.experts.length > 1 ? `.${e.first}` : '';
    const label = `${a.label}.${up ? 'mlp1' : 'mlp2'}_matvec${shard}`;
    const perExpert = (n * kdim) / 2 + (n * kdim) / 32 + n * 4;
    return {
      label,
      pipeline,
      bindGroup: bindGroup(ctx.gpu, pipeline, bufs, label),
      // each used expert's matrix once per pass of P of its rows (once per step up to P rows)
      weightBytes: (s, r) => {
        const c = counts(s, r);
        let passes = 0;
        for (let x = e.first; x < e.first + e.count; x++) passes += Math.ceil(c[x]! / P);
        return perExpert * passes;
      },
      macs: (s, r) => {
        const c = counts(s, r);
        let rows = 0;
        for (let x = e.first; x < e.first + e.count; x++) rows += c[x]!;
        return rows * n * kdim;
      },
      groups: (s) => (on(s) ? [Math.ceil(n / rowsPerGroup), Math.min(e.count, s.tokens * k), 1] : null),
    };
  };
  ops.push(...a.experts.map((e) => matvec(true, e)), ...a.experts.map((e) => matvec(false, e)));
  ops.push(moeGatherOp(ctx, { label: a.label, hidden: H, topK: k, routing: a.routing, group: g, x: a.x }, on));
  return ops;
}

/** Lanes per weight row: 8 (a 128-byte run of blocks per row), within the smallest subgroup. */
function defaultTeam(ctx: OpContext): number {
  if (!ctx.shaders.useSubgroups) return 8;
  return Math.max(2, Math.min(8, 2 ** Math.floor(Math.log2(Math.max(1, ctx.gpu.subgroupMinSize)))));
}

function stepIn(min: number, max: number): (s: StepShape) => boolean {
  return (s) => s.tokens >= min && s.tokens <= max;
}

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

function checkTopK(label: string, E: number, k: number): void {
  if (!Number.isInteger(k) || k < 1 || k > MAX_TOP_K) throw new Error(`${label}: topK ${k} is outside 1..${MAX_TOP_K}`);
  if (!Number.isInteger(E) || E < k || E > 1024) throw new Error(`${label}: ${E} experts: need top-${k} <= E <= 1024`);
}

function checkMultiple(label: string, what: string, n: number): void {
  if (!Number.isInteger(n) || n <= 0 || n % 32 !== 0) throw new Error(`${label}: ${what} ${n} is not a positive multiple of 32 (the MXFP4 block)`);
}
