// Factories for the subgroup-matrix GEMMs (shaders/lib/sgmat.wgsl): the dense bf16 product
// (matmul_sgmat, the semantics of matmul_tiled) and the grouped MXFP4 experts (moe_gemm_sgmat, of
// moe_gemm). Each compiles either for the hardware (the adapter's f16 -> f32 config) or as its
// emulated twin (SGMAT_EMULATE: same source and workgroup layout, plain WGSL fragment ops), which
// runs on any adapter with shader-f16; tests and the self-check use the twin where the real one
// cannot run.
import { bindGroup, grid, type Dispatch, type StepShape } from '../../gpu/buffers.js';
import type { Gpu, SubgroupMatrixConfig } from '../../gpu/device.js';
import { KERNEL_PARAMS } from '../../gpu/kernel-params.js';
import { paramsBuffer } from '../../gpu/params.js';
import type { ShaderCache } from '../../gpu/shaders.js';
import type { OpContext } from './context.js';
import type { MatmulArgs } from './basic.js';
import { moeGatherOp, type MoeGroupedArgs } from './moe-shared.js';

/** How the subgroup-matrix kernels compile: the fragment shape, lanes per subgroup, real or twin. */
export interface SgmatShape {
  M: number;
  N: number;
  K: number;
  /** Lanes per subgroup (the real kernels: the adapter's fixed subgroup size). */
  sgw: number;
  emulate: boolean;
}

/** What an engine's self-check at load allowed: the real kernels' shape, and the MoE too or not. */
export interface SgmatUse {
  shape: SgmatShape;
  /** The checkpoint's MXFP4 scales decode to f16 exactly (dispatch-policy.ts sgmatMoeScalesExact). */
  moe: boolean;
}

// Per shader cache, i.e. per engine (scoped contexts share their parent's cache): the op
// factories read it, so forward.ts builds the subgroup-matrix variants without new arguments.
const uses = new WeakMap<ShaderCache, SgmatUse>();

/** Lets the op factories of contexts on `shaders` build the subgroup-matrix variants. */
export function useSgmat(shaders: ShaderCache, use: SgmatUse): void {
  uses.set(shaders, use);
}

/** The subgroup-matrix kernels this context's engine may use, or null (the f32 kernels only). */
export function sgmatOf(ctx: OpContext): SgmatUse | null {
  return uses.get(ctx.shaders) ?? null;
}

/** The tile every subgroup-matrix GEMM uses: 2 x 4 warps of 32 x 32, K slices of one MXFP4 block. */
export const SGMAT_TILE = { BM: 64, BN: 128, BK: 32, WARPS: 8 } as const;

/** The real kernels' shape on this device, or null when it has no usable f16 config. */
export function sgmatShapeOf(gpu: Gpu): SgmatShape | null {
  const c = gpu.sgmatF16;
  if (!c) return null;
  return { M: c.M, N: c.N, K: c.K, sgw: gpu.subgroupMaxSize, emulate: false };
}

/** The emulated twin's shape: NVIDIA's likely 16 x 16 x 16 with 32 lanes unless told otherwise. */
export function sgmatTwin(c: Partial<Pick<SubgroupMatrixConfig, 'M' | 'N' | 'K'>> & { sgw?: number } = {}): SgmatShape {
  return { M: c.M ?? 16, N: c.N ?? 16, K: c.K ?? 16, sgw: c.sgw ?? 32, emulate: true };
}

function spec(shader: string, s: SgmatShape, flags: string[]) {
  if (32 % s.M || 32 % s.N || 32 % s.K) throw new Error(`${shader}: fragment ${s.M}x${s.N}x${s.K} does not divide the 32 x 32 warp tile`);
  if (s.emulate && (s.M * s.N) % s.sgw) throw new Error(`${shader}: the twin splits a ${s.M}x${s.N} fragment over ${s.sgw} lanes evenly only`);
  return {
    shader,
    defines: { SG_M: s.M, SG_N: s.N, SG_K: s.K, SGW: s.sgw, BK: SGMAT_TILE.BK },
    flags: [...flags, s.emulate ? 'SGMAT_EMULATE' : 'SGMAT', 'F16'],
  };
}

/** y = x W^T (+ bias) (+ y) over 64-token x 128-row tiles; K a multiple of 32. */
export function sgmatDenseOp(ctx: OpContext, a: MatmulArgs, s: SgmatShape, when?: (st: StepShape) => boolean): Dispatch {
  if (a.k % SGMAT_TILE.BK) throw new Error(`${a.label}: K ${a.k} is not a multiple of ${SGMAT_TILE.BK}`);
  const flags = [a.bias ? 'BIAS' : '', a.accumulate ? 'ACCUMULATE' : '', a.outRows ? 'OUT_ROWS' : ''].filter(Boolean);
  const pipeline = ctx.shaders.pipeline(spec('matmul_sgmat', s, flags));
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.matmul_sgmat, { k: a.k, n: a.n, n0: a.n0 ?? 0, ny: a.ny ?? a.n }, `${a.label}.sgmat.params`);
  const bufs = [ctx.step, params, a.x, a.w, ...(a.bias ? [a.bias] : []), a.y];
  const rowsOf = (st: StepShape) => (a.outRows ? st.rows : st.tokens);
  const tiles = (st: StepShape) => [Math.ceil(rowsOf(st) / SGMAT_TILE.BM), Math.ceil(a.n / SGMAT_TILE.BN)] as const;
  return {
    label: `${a.label}.sgmat`,
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, bufs, `${a.label}.sgmat`),
    weightBytes: (st) => (2 * a.k * a.n + (a.bias ? 4 * a.n : 0)) * tiles(st)[0],
    macs: (st) => tiles(st)[0] * SGMAT_TILE.BM * tiles(st)[1] * SGMAT_TILE.BN * a.k,
    ...(when ? { when } : {}),
    groups: (st) => (rowsOf(st) > 0 ? [tiles(st)[0], tiles(st)[1], 1] : null),
  };
}

/**
 * The grouped MoE of moeGroupedOps on subgroup matrices: moe_route into 64-row tiles, per expert
 * shard moe_gemm_sgmat for mlp1 + SwiGLU and for mlp2 + bias, then moe_gather. The group buffers of
 * allocateMoeGroup fit (its tile list is sized for 32-row tiles).
 */
export function sgmatMoeOps(ctx: OpContext, a: MoeGroupedArgs, s: SgmatShape, on: (st: StepShape) => boolean): Dispatch[] {
  const { hidden: H, intermediate: I, topK: k, numExperts: E } = a;
  if (H % 32 || I % 32) throw new Error(`${a.label}: hidden ${H} and intermediate ${I} must be multiples of 32`);
  const T = SGMAT_TILE;
  const g = a.group;
  const route = ctx.shaders.pipeline({ shader: 'moe_route', defines: { WG: 256, BM: T.BM } });
  const routeParams = paramsBuffer(ctx.gpu, KERNEL_PARAMS.moe_route, { k, e: E, tiles_off: g.tilesOffset }, `${a.label}.route64.params`);
  const ops: Dispatch[] = [
    {
      label: `${a.label}.route64`,
      pipeline: route,
      bindGroup: bindGroup(ctx.gpu, route, [ctx.step, routeParams, a.routing, g.meta, g.order, g.dst], `${a.label}.route64`),
      when: on,
      groups: [1, 1, 1],
    },
  ];
  const gemm = (up: boolean, e: MoeGroupedArgs['experts'][number]): Dispatch => {
    const n = up ? 2 * I : H;
    const pipeline = ctx.shaders.pipeline(spec('moe_gemm_sgmat', s, up ? ['UP'] : []));
    const params = paramsBuffer(
      ctx.gpu,
      KERNEL_PARAMS.moe_gemm_sgmat,
      { kdim: up ? H : I, n, k, e: E, e0: e.first, ec: e.count, tiles_off: g.tilesOffset, limit: a.swigluLimit },
      `${a.label}.sgmat.params`,
    );
    const bufs = up
      ? [params, g.meta, a.xn, e.mlp1Blocks, e.mlp1Scales, e.mlp1Bias, a.h, g.order]
      : [params, g.meta, a.h, e.mlp2Blocks, e.mlp2Scales, e.mlp2Bias, g.y];
    const shard = a.experts.length > 1 ? `.${e.first}` : '';
    const label = `${a.label}.${up ? 'mlp1' : 'mlp2'}_sgmat${shard}`;
    const perExpert = up ? (2 * I * H) / 2 + (2 * I * H) / 32 + 2 * I * 4 : (H * I) / 2 + (H * I) / 32 + H * 4;
    const tilesOf = (st: StepShape, ids: Uint32Array) => tilesIn(ids, st.tokens * k, e.first, e.count, T.BM);
    return {
      label,
      pipeline,
      bindGroup: bindGroup(ctx.gpu, pipeline, bufs, label),
      weightBytes: (st, r) => perExpert * tilesOf(st, r.ids(a.routing)),
      macs: (st, r) => T.BM * n * (up ? H : I) * tilesOf(st, r.ids(a.routing)),
      when: on,
      // an upper bound on this shard's tiles: its rows in 64-row tiles plus one partial per expert
      groups: (st) => [Math.ceil((st.tokens * k) / T.BM) + e.count, Math.ceil(n / T.BN), 1],
    };
  };
  ops.push(...a.experts.map((e) => gemm(true, e)), ...a.experts.map((e) => gemm(false, e)));
  ops.push(moeGatherOp(ctx, { label: a.label, hidden: H, topK: k, routing: a.routing, group: g, x: a.x }, on));
  return ops;
}

/** Test and self-check kernel: MXFP4 blocks through the f16 decode with the scale folded in, as f16 bits (u16 [count][32]). */
export function mxfp4F16DecodeOp(ctx: OpContext, a: { blocks: GPUBuffer; scales: GPUBuffer; out: GPUBuffer; count: number }): Dispatch {
  const WG = 64;
  const pipeline = ctx.shaders.pipeline({ shader: 'mxfp4_f16_check', defines: { WG }, flags: ['F16'] });
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.mxfp4_f16_check, { blocks: a.count }, 'mxfp4_f16.params');
  return {
    label: 'mxfp4_f16_decode',
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, [params, a.blocks, a.scales, a.out], 'mxfp4_f16_decode'),
    groups: grid(Math.ceil(a.count / WG)),
  };
}

function tilesIn(ids: Uint32Array, n: number, e0: number, ec: number, bm: number): number {
  const rows = new Uint32Array(ec);
  for (let i = 0; i < n; i++) if (ids[i]! >= e0 && ids[i]! < e0 + ec) rows[ids[i]! - e0]!++;
  return rows.reduce((t, r) => t + Math.ceil(r / bm), 0);
}
