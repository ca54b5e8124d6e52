// The GPU sampler: greedy argmax or temperature/top-k/top-p sampling of the last logits row; the
// chosen id lands in tokens[0], where the next step's embedding reads it.
import { bindGroup, uniformBuffer, Params, type Dispatch } from '../../gpu/buffers.js';
import type { OpContext } from './context.js';

export function sampleOp(ctx: OpContext, a: { logits: GPUBuffer; tokens: GPUBuffer; vocab: number }): Dispatch {
  const pipeline = ctx.shaders.pipeline({ shader: 'sample', defines: { WG: Math.min(ctx.wg, 256) } });
  const params = uniformBuffer(ctx.gpu, new Params().u32(a.vocab), 'sample.params');
  return {
    label: 'sample',
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, [ctx.step, params, a.logits, a.tokens], 'sample'),
    groups: [1, 1, 1],
  };
}
