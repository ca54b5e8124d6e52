// Temperature sampling through the engine, on synthetic:tiny's full 201,088-token vocabulary:
// each token is the Gumbel-max draw of its (seed, token index) over the logits the engine
// computed (recomputed in float64 from onLogits); the same seed replays the same tokens, other
// seeds draw others; and a first token drawn by the tiled head (every prompt row's logits) is the
// one the fused head draws.
import { describe, expect, it } from 'vitest';
import { Engine, type GenerateOptions } from '../../src/engine/engine.js';
import { syntheticConfig, syntheticGpuSource } from '../../src/model/synthetic.js';
import { testGpu } from '../helpers/gpu.js';
import { gumbelArgmax } from '../helpers/sampling-ref.js';
import { rng } from '../helpers/random.js';

const gpu = await testGpu();

describe('temperature sampling through the engine', () => {
  it('tokens are the Gumbel-max draws of (seed, index); a seed replays; the tiled and fused heads agree', async () => {
    const c = syntheticConfig('tiny');
    const engine = await Engine.load(syntheticGpuSource(c, 2), { gpu, context: 128, maxNumSeqs: 2, maxBatchTokens: 32, allLogits: true });
    try {
      const r = rng(31);
      const prompt = Array.from({ length: 20 }, () => Math.floor(r() * c.vocabSize));
      const o = (seed: number, extra: Partial<GenerateOptions> = {}): GenerateOptions => ({ maxTokens: 12, temperature: 1, seed, stopTokens: [], ...extra });
      const rows: Float32Array[] = [];
      const first = await engine.generate(prompt, o(3, { onLogits: (l) => void rows.push(l) }));
      expect(first.tokens).toHaveLength(12);
      expect(rows).toHaveLength(12);
      let compared = 0;
      first.tokens.forEach((id, j) => {
        const ref = gumbelArgmax(rows[j]!, 1, 3, j);
        if (ref.gap < 1e-3) return;
        compared++;
        expect(id, `token ${j}`).toBe(ref.id);
      });
      expect(compared).toBeGreaterThanOrEqual(10);

      const again = await engine.generate(prompt, o(3));
      expect(again.tokens).toEqual(first.tokens);
      const others = await Promise.all([4, 5].map((s) => engine.generate(prompt, o(s))));
      for (const x of others) expect(x.tokens).not.toEqual(first.tokens);
      // 20 prompt rows of logits: the first token comes from the tiled head's sampler pass
      let prefillRows = 0;
      const tiled = await engine.generate(prompt, o(3, { onPrefillLogits: (l) => void (prefillRows += l.length / c.vocabSize) }));
      expect(prefillRows).toBeGreaterThanOrEqual(16);
      expect(tiled.tokens).toEqual(first.tokens);
    } finally {
      engine.destroy();
    }
  });
});
