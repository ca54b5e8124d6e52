// What the grouped MoE paths (moe.ts: the f32 GEMM; sgmat.ts: the subgroup-matrix GEMM) share: their
// scratch buffers and arguments, and the final gather into x. Its own module so neither path
// imports the other.
import { bindGroup, grid, type Dispatch, type StepShape } from '../../gpu/buffers.js';
import { KERNEL_PARAMS } from '../../gpu/kernel-params.js';
import { paramsBuffer } from '../../gpu/params.js';
import type { OpContext } from './context.js';

/** The grouped MoE's scratch: routing metadata, the sorted order and its inverse, expert outputs. */
export interface MoeGroupBuffers {
  /** u32: offsets[E + 1], tile_off[E + 1], tiles[2 * maxTiles] (moe_route.wgsl). */
  meta: GPUBuffer;
  order: GPUBuffer;
  dst: GPUBuffer;
  /** f32 [T·k][H]: each (token, slot)'s expert output at its sorted row. */
  y: GPUBuffer;
  tilesOffset: number;
}

export interface MoeGroupedArgs {
  xn: GPUBuffer;
  routing: GPUBuffer;
  /** f32 [T·k][I]: SwiGLU outputs at sorted rows. */
  h: GPUBuffer;
  /** x += the weighted expert outputs. */
  x: GPUBuffer;
  group: MoeGroupBuffers;
  experts: readonly { first: number; count: number; mlp1Blocks: GPUBuffer; mlp1Scales: GPUBuffer; mlp1Bias: GPUBuffer; mlp2Blocks: GPUBuffer; mlp2Scales: GPUBuffer; mlp2Bias: GPUBuffer }[];
  hidden: number;
  intermediate: number;
  topK: number;
  numExperts: number;
  swigluLimit: number;
  /** Steps with fewer tokens skip these dispatches (tests); default dispatch-policy.ts moeGrouped. */
  minTokens?: number;
  label: string;
}

/** x += the routing-weighted expert outputs of each token, in slot order (moe_gather). */
export function moeGatherOp(
  ctx: OpContext,
  a: { label: string; hidden: number; topK: number; routing: GPUBuffer; group: { dst: GPUBuffer; y: GPUBuffer }; x: GPUBuffer },
  on: (s: StepShape) => boolean,
): Dispatch {
  const pipeline = ctx.shaders.pipeline({ shader: 'moe_gather', defines: { WG: 64 } });
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.moe_gather, { h: a.hidden, k: a.topK }, `${a.label}.gather.params`);
  return {
    label: `${a.label}.gather`,
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, [ctx.step, params, a.routing, a.group.dst, a.group.y, a.x], `${a.label}.gather`),
    when: on,
    groups: (s) => grid(s.tokens),
  };
}
