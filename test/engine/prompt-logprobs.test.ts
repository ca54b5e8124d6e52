// Prompt logprobs (completions' echo + logprobs, vLLM's prompt_logprobs): each prompt position's
// row gives the next prompt token's log probability and the most likely tokens there, against the
// float64 log-softmax of the oracle's prefill logits; the prompt is prefilled in chunks bounded by
// the rows the engine gives them, beside a request that does not ask, and sampling is unchanged.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { testGpu } from '../helpers/gpu.js';
import { manifest, ORACLE, ORACLE_MODELS, referenceTensors } from '../helpers/oracle.js';
import { logSoftmax64 } from '../helpers/sampling-ref.js';

const gpu = await testGpu();

describe('prompt logprobs', () => {
  for (const model of ORACLE_MODELS) {
    it(`${model}: each prompt token's logprob and the top 5 at each position match the oracle; generation unchanged`, async () => {
      const man = manifest(model);
      const ref = await referenceTensors(model);
      const P = man.prompt_ids.length;
      // chunks of 48 tokens: the prompt rows (32 a step) bound the prompt's chunks, not the budget
      const engine = await Engine.load(join(ORACLE, model, 'hf'), { gpu, context: P + 24, maxBatchTokens: 48, maxNumSeqs: 2, kvDtype: 'f32' });
      try {
        const V = engine.config.vocabSize;
        const [res, other] = await Promise.all([
          engine.generate(man.prompt_ids, { maxTokens: 24, promptLogprobs: 5 }),
          engine.generate(man.prompt_ids.slice(0, 9), { maxTokens: 4 }),
        ]);
        expect(res.tokens).toEqual(man.generated_ids);
        expect(other.promptLogprobs).toBeUndefined();
        const lps = res.promptLogprobs!;
        expect(lps).toHaveLength(P);
        expect(lps[0]).toBeNull();
        const logits = ref.get('prefill_logits')!.data;
        const atol = 2 * Number(man.tolerances.f32.logits_atol);
        for (let p = 1; p < P; p++) {
          const ls = logSoftmax64(logits.subarray((p - 1) * V, p * V));
          const lp = lps[p]!;
          expect(Math.abs(lp.logprob - ls[man.prompt_ids[p]!]!), `position ${p}`).toBeLessThan(atol);
          expect(lp.top).toHaveLength(5);
          const order = [...ls.keys()].sort((a, b) => ls[b]! - ls[a]!);
          lp.top.forEach((t, j) => {
            expect(Math.abs(t.logprob - ls[t.id]!), `position ${p} top ${j}`).toBeLessThan(atol);
            // the j-th best by the reference, up to ties within the tolerance
            expect(ls[t.id]!).toBeGreaterThan(ls[order[j]!]! - atol);
          });
        }
        // a second run of the same prompt computes it again (no prefix-cache hit) and agrees
        const again = await engine.generate(man.prompt_ids, { maxTokens: 1, promptLogprobs: 0 });
        expect(again.cachedTokens).toBe(0);
        again.promptLogprobs!.forEach((lp, p) => (p ? expect(Math.abs(lp!.logprob - lps[p]!.logprob)).toBeLessThan(1e-4) : expect(lp).toBeNull()));
        await expect(engine.generate([1, 2], { maxTokens: 1, promptLogprobs: 21 })).rejects.toThrow(/prompt logprobs 21/);
      } finally {
        engine.destroy();
      }
    });
  }
});
