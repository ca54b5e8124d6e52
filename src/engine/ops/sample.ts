// The GPU sampler: greedy argmax or temperature/top-k/top-p sampling of the last logits row; the
// chosen id lands in tokens[0], where the next step's embedding reads it. An optional allowed-token
// bitmask (constrained decoding) is switched on by a flag in the sampler's own parameters, so the
// unmasked path writes nothing extra and never reads the mask.
import { bindGroup, storageBuffer, uniformBuffer, writeBuffer, Params, type Dispatch } from '../../gpu/buffers.js';
import type { OpContext } from './context.js';

/** Controls the allowed-token mask of one sampler dispatch. */
export interface SamplerMask {
  /** u32 words the mask holds: ceil(vocab / 32). */
  readonly words: number;
  /**
   * Sets the mask for the next samples (bit i of word i >> 5 = token i allowed): one
   * queue.writeBuffer, plus one for the flag when it changes. null turns masking off (one write
   * when it was on, none otherwise).
   */
  set(mask: Uint32Array | null): void;
}

const masks = new WeakMap<Dispatch, SamplerMask>();

/** The mask control of a dispatch made by sampleOp. */
export function samplerMask(d: Dispatch): SamplerMask {
  const m = masks.get(d);
  if (!m) throw new Error(`dispatch ${d.label} is not a sampler`);
  return m;
}

export function sampleOp(ctx: OpContext, a: { logits: GPUBuffer; tokens: GPUBuffer; vocab: number }): Dispatch {
  const pipeline = ctx.shaders.pipeline({ shader: 'sample', defines: { WG: Math.min(ctx.wg, 256) } });
  const params = uniformBuffer(ctx.gpu, new Params().u32(a.vocab).u32(0), 'sample.params');
  const words = Math.ceil(a.vocab / 32);
  const maskBuf = storageBuffer(ctx.gpu, words * 4, 'sample.mask');
  const d: Dispatch = {
    label: 'sample',
    pipeline,
    bindGroup: bindGroup(ctx.gpu, pipeline, [ctx.step, params, a.logits, a.tokens, maskBuf], 'sample'),
    groups: [1, 1, 1],
  };
  let on = false;
  masks.set(d, {
    words,
    set(mask) {
      if (mask) {
        if (mask.length !== words) throw new Error(`sampler mask has ${mask.length} words, expected ${words}`);
        writeBuffer(ctx.gpu, maskBuf, 0, mask);
      }
      if (!!mask !== on) {
        on = !!mask;
        ctx.gpu.device.queue.writeBuffer(params, 4, new Uint32Array([on ? 1 : 0]));
      }
    },
  });
  return d;
}
