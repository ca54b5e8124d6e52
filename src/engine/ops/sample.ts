// The GPU sampler, in two passes. sample_candidates spreads each sampled row over many
// workgroups (a slice of the vocabulary each: its max, its softmax mass, its C best logits);
// sample then decides per row from those candidates (greedy, top-k, top-p, the seeded draw),
// reading the whole row only when they cannot decide. Each row has its own settings and optional
// allowed-token mask (constrained decoding). The ids go to `sampled` (the step's one readback) and
// to each row's slot in `lastIds`, where the next step's embedding reads them without the host.
import { bindGroup, grid, storageBuffer, type Dispatch } from '../../gpu/buffers.js';
import { KERNEL_PARAMS } from '../../gpu/kernel-params.js';
import { paramsBuffer } from '../../gpu/params.js';
import type { OpContext, StepInputs } from './context.js';

/** A sample row's settings as its kernels read them (temperature and top_p as f32). */
export interface SampleSettings {
  temperature: number;
  topP: number;
  topK: number;
  masked: boolean;
}

/**
 * Temperature sampling over the whole softmax, drawn by Gumbel-max (shaders/lib/sample_settings
 * gumbel_draw, which this must match: pass temperature and top_p rounded to f32).
 */
export function gumbelDraw(s: SampleSettings, vocab: number): boolean {
  return !s.masked && s.temperature > 0 && s.topP >= 1 && (s.topK === 0 || s.topK >= vocab);
}

/** The unembedding's pick (ARGMAX) is the row's token: lib/sample_settings unembed_settles. */
export function unembedSettles(s: SampleSettings, vocab: number): boolean {
  return (s.temperature <= 0 && !s.masked) || gumbelDraw(s, vocab);
}

/** Candidates per slice: a kept set with at most this many tokens in every slice is decided from the candidates. */
export const SAMPLE_CANDIDATES = 32;
const CAND_WG = 256;

/** Logits per slice: at least 2048, and few enough slices that one workgroup handles them all. */
function sliceSize(vocab: number, wg: number, slice?: number): number {
  const s = slice ?? Math.max(2048, Math.ceil(vocab / wg));
  return Math.ceil(s / CAND_WG) * CAND_WG;
}

/**
 * With `argmax` (the unembedding's picks, unembed.wgsl) an unmasked greedy row and a Gumbel-max
 * row copy their pick and both passes skip them. `slice` sets the logits per slice (tests: several slices on a
 * small vocabulary).
 */
export function sampleOps(ctx: OpContext, a: { logits: GPUBuffer; inputs: StepInputs; vocab: number; argmax?: GPUBuffer; slice?: number }): Dispatch[] {
  const wg = Math.min(ctx.wg, 256);
  const slice = sliceSize(a.vocab, wg, a.slice);
  const slices = Math.ceil(a.vocab / slice);
  if (slices > wg) throw new Error(`sampler: ${slices} slices of ${slice} exceed the ${wg} one workgroup merges`);
  const i = a.inputs;
  const rows = Math.max(1, i.cap.samples);
  const cand = storageBuffer(ctx.gpu, rows * slices * SAMPLE_CANDIDATES * 8, 'sample.candidates');
  const stats = storageBuffer(ctx.gpu, rows * slices * 8, 'sample.stats');
  const params = paramsBuffer(ctx.gpu, KERNEL_PARAMS.sample, { vocab: a.vocab, mask_words: i.maskWords, slices }, 'sample.params');
  const flags = a.argmax ? ['ARGMAX'] : [];
  const first = ctx.shaders.pipeline({ shader: 'sample_candidates', defines: { WG: CAND_WG, SLICE: slice, C: SAMPLE_CANDIDATES }, flags });
  const second = ctx.shaders.pipeline({ shader: 'sample', defines: { WG: wg, C: SAMPLE_CANDIDATES }, flags });
  return [
    {
      label: 'sample.candidates',
      pipeline: first,
      bindGroup: bindGroup(ctx.gpu, first, [ctx.step, params, i.sampling, a.logits, i.masks, cand, stats], 'sample.candidates'),
      // with the unembedding's picks, a step of rows it settles (sampleScan 0) needs no candidates
      groups: (s) => (s.samples && (!a.argmax || (s.sampleScan ?? s.samples) > 0) ? [slices, s.samples, 1] : null),
    },
    {
      label: 'sample',
      pipeline: second,
      bindGroup: bindGroup(ctx.gpu, second, [ctx.step, params, i.sampling, a.logits, i.masks, i.sampled, i.lastIds, cand, stats, ...(a.argmax ? [a.argmax] : [])], 'sample'),
      groups: (s) => (s.samples ? grid(s.samples) : null),
    },
  ];
}
