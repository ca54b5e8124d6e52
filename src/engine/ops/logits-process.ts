// Factories for the per-row logits processing around the sampler: logits_process (before it:
// logprobs of the raw row, logit bias and penalties on the listed tokens, min-p) and
// logprobs_pick (after it: the sampled token's logprob). Both run only on the rows the host lists
// (StepShape.processRows), so a step without such rows dispatches neither.
import { grid, bindGroup, type Dispatch } from '../../gpu/buffers.js';
import { KERNEL_PARAMS } from '../../gpu/kernel-params.js';
import { paramsBuffer } from '../../gpu/params.js';
import { MAX_TOP_LOGPROBS, type OpContext, type StepInputs } from './context.js';

export function logitsProcessOps(ctx: OpContext, a: { logits: GPUBuffer; inputs: StepInputs; vocab: number }): { before: Dispatch; after: Dispatch } {
  const i = a.inputs;
  const wg = Math.min(ctx.wg, 256);
  const process = ctx.shaders.pipeline({ shader: 'logits_process', defines: { WG: wg, TOPN: MAX_TOP_LOGPROBS } });
  const pick = ctx.shaders.pipeline({ shader: 'logprobs_pick', defines: { TOPN: MAX_TOP_LOGPROBS } });
  const pp = paramsBuffer(ctx.gpu, KERNEL_PARAMS.logits_process, { vocab: a.vocab }, 'logits_process.params');
  const pk = paramsBuffer(ctx.gpu, KERNEL_PARAMS.logprobs_pick, { vocab: a.vocab }, 'logprobs_pick.params');
  const rows = (s: { processRows?: number }) => (s.processRows ? grid(s.processRows) : null);
  return {
    before: {
      label: 'logits_process',
      pipeline: process,
      bindGroup: bindGroup(ctx.gpu, process, [ctx.step, pp, i.procRows, i.procEntries, a.logits, i.logprobs], 'logits_process'),
      groups: rows,
    },
    after: {
      label: 'logprobs_pick',
      pipeline: pick,
      bindGroup: bindGroup(ctx.gpu, pick, [ctx.step, pk, i.procRows, i.procEntries, a.logits, i.sampled, i.logprobs], 'logprobs_pick'),
      groups: rows,
    },
  };
}
