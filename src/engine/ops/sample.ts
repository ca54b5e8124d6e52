// The GPU sampler: one workgroup per sample row, each row with its own settings (temperature,
// top-k, top-p, seed, counter) and optional allowed-token mask (constrained decoding). The ids go to
// `sampled` (the step's one readback) and to each row's slot in `lastIds`, where the next step's
// embedding reads them without the host.
import { bindGroup, grid, uniformBuffer, Params, type Dispatch } from '../../gpu/buffers.js';
import type { OpContext, StepInputs } from './context.js';

/**
 * With `argmax` (the unembedding's greedy picks, unembed.wgsl) an unmasked greedy row copies its
 * pick instead of scanning the logits.
 */
export function sampleOp(ctx: OpContext, a: { logits: GPUBuffer; inputs: StepInputs; vocab: number; argmax?: GPUBuffer }): Dispatch {
  const pipeline = ctx.shaders.pipeline({ shader: 'sample', defines: { WG: Math.min(ctx.wg, 256) }, flags: a.argmax ? ['ARGMAX'] : [] });
  const params = uniformBuffer(ctx.gpu, new Params().u32(a.vocab).u32(a.inputs.maskWords), 'sample.params');
  const i = a.inputs;
  const bufs = [ctx.step, params, i.samples, a.logits, i.masks, i.sampled, i.lastIds, ...(a.argmax ? [a.argmax] : [])];
  return {
    label: 'sample',
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, bufs, 'sample'),
    groups: (s) => (s.samples ? grid(s.samples) : null),
  };
}
