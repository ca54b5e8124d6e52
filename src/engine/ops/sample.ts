// The GPU sampler: one dispatch, a workgroup per sampled row (shaders/sample.wgsl). Each row has its
// own settings and optional allowed-token mask (constrained decoding); greedy takes the argmax, any
// temperature draws by Gumbel-max over the kept tokens. The ids go to `sampled` (the step's one
// readback) and to each row's slot in `lastIds`, where the next step's embedding reads them
// without the host.
import { bindGroup, grid, type Dispatch } from '../../gpu/buffers.js';
import { KERNEL_PARAMS } from '../../gpu/kernel-params.js';
import { paramsBuffer } from '../../gpu/params.js';
import type { OpContext, StepInputs } from './context.js';

/**
 * Tokens a cut row (top-k, top-p) may list in workgroup memory: a bound from the threads' best
 * logits that lets more through sends the row's thresholds over the whole row.
 */
export const SAMPLE_LIST = 1024;

/**
 * With `argmax` (the unembedding's picks, unembed.wgsl) an unmasked greedy row and a Gumbel-max
 * row copy their pick, and an unmasked top-p row starts from its Gumbel-max pick.
 */
export function sampleOps(ctx: OpContext, a: { logits: GPUBuffer; inputs: StepInputs; vocab: number; argmax?: GPUBuffer }): Dispatch[] {
  const wg = Math.min(ctx.wg, 256);
  const i = a.inputs;
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.sample, { vocab: a.vocab, mask_words: i.maskWords }, 'sample.params');
  const pipeline = ctx.shaders.pipeline({ shader: 'sample', defines: { WG: wg, LIST: SAMPLE_LIST }, flags: a.argmax ? ['ARGMAX'] : [] });
  return [
    {
      label: 'sample',
      pipeline,
      bindGroup: bindGroup(ctx.gpu, pipeline, [ctx.step, params, i.sampling, a.logits, i.masks, i.sampled, i.lastIds, ...(a.argmax ? [a.argmax] : [])], 'sample'),
      groups: (s) => (s.samples ? grid(s.samples) : null),
    },
  ];
}
