// What the sampler tests feed the unembedding and the sampler: SampleRow words (ops/context.ts
// SAMPLE_ROW_WORDS, lib/sample_settings) and a random unembedding head split into shards.
import { SAMPLE_ROW_WORDS } from '../../src/engine/ops/context.js';
import { uploadBuffer } from '../../src/gpu/buffers.js';
import type { Gpu } from '../../src/gpu/device.js';
import { randomBf16, randomF32, rng } from './random.js';

export interface SampleRowSpec {
  /** Logits row. */
  row: number;
  /** Sequence slot (its mask row, its last id); default the row's index in the list. */
  slot?: number;
  t: number;
  seed: number;
  counter: number;
  topP?: number;
  topK?: number;
  mask?: Uint32Array;
}

export function sampleRowWords(rows: readonly SampleRowSpec[]): Uint32Array {
  const words = new Uint32Array(rows.length * SAMPLE_ROW_WORDS);
  const floats = new Float32Array(words.buffer);
  rows.forEach((o, i) => {
    const w = i * SAMPLE_ROW_WORDS;
    words.set([o.row, o.slot ?? i, o.seed, o.counter], w);
    floats[w + 4] = o.t;
    floats[w + 5] = o.topP ?? 1;
    words[w + 6] = o.topK ?? 0;
    words[w + 7] = o.mask ? 1 : 0;
  });
  return words;
}

/**
 * A head of V vocabulary rows over H in `nshards` shards, and T tokens of x for it. Weights of
 * standard deviation `spread` give logits of ~spread·sqrt(H): at 0.3 a few tokens hold most of
 * the mass, none all of it.
 */
export function randomHead(gpu: Gpu, seed: number, V: number, H: number, T: number, nshards: number, spread = 0.3) {
  const r = rng(seed);
  const x = uploadBuffer(gpu, randomF32(r, T * H, 2), 'x');
  const scale = uploadBuffer(gpu, randomF32(r, H, 1), 'scale');
  const w = randomBf16(r, V * H, spread);
  const per = Math.ceil(V / nshards);
  const shards = Array.from({ length: nshards }, (_, i) => {
    const first = i * per;
    const count = Math.min(per, V - first);
    return { first, count, buffer: uploadBuffer(gpu, w.bits.slice(first * H, (first + count) * H), `w${i}`) };
  });
  return { x, scale, shards };
}
