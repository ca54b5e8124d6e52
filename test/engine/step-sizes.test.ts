// Every kernel variant the dispatch policy picks by step size, through the whole engine: a
// 200-token prompt prefilled in chunks of 2 to 200 tokens (the fused and unfused QKV, the one-row,
// multi-row and tiled matmuls, the expert-grouped matvec MoE and the grouped GEMM, the fused and
// unfused head) gives every prompt row's logits within the f32 tolerance of the float64 reference
// model, on oracle checkpoints with 128 experts top-4 and 64 experts top-2.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { openCheckpoint } from '../../src/model/checkpoint.js';
import { MOE_SMALLM_MAX_TOKENS, DENSE_TILED_MIN_ROWS, FUSED_MAX_TOKENS, HEAD_FUSED_MAX_ROWS } from '../../src/engine/dispatch-policy.js';
import { expectClose } from '../helpers/compare.js';
import { testGpu } from '../helpers/gpu.js';
import { manifest, ORACLE } from '../helpers/oracle.js';
import { rng } from '../helpers/random.js';
import { ReferenceModel } from '../helpers/reference-model.js';

const gpu = await testGpu();
const P = 200;
// chunk sizes on both sides of every switch point, and one that takes the whole prompt
const CHUNKS = [2, FUSED_MAX_TOKENS + 1, HEAD_FUSED_MAX_ROWS + 1, DENSE_TILED_MIN_ROWS + 1, MOE_SMALLM_MAX_TOKENS + 1, P];

describe.each(['tiny-e128k4', 'tiny-e64k2'])('%s', (model) => {
  it(`a ${P}-token prompt prefilled in chunks of ${CHUNKS.join(', ')}: every row's logits match the float64 reference`, async () => {
    expect(MOE_SMALLM_MAX_TOKENS + 1).toBeLessThan(P);
    const dir = join(ORACLE, model, 'hf');
    const ckpt = await openCheckpoint(dir);
    const ref = await ReferenceModel.load(ckpt);
    await ckpt.close();
    const r = rng(P + model.length);
    const tol = manifest(model).tolerances.f32;
    let engine: Engine | undefined;
    try {
      engine = await Engine.load(dir, { gpu, context: P + 2, maxBatchTokens: 8, kvDtype: 'f32', allLogits: true });
      const V = engine.config.vocabSize;
      const prompt = Array.from({ length: P }, () => Math.floor(r() * V));
      const want = new Float64Array(P * V);
      prompt.forEach((id, t) => want.set(ref.step(id).logits, t * V));
      engine.destroy();
      for (const chunk of CHUNKS) {
        engine = await Engine.load(dir, { gpu, context: P + 2, maxBatchTokens: chunk, kvDtype: 'f32', allLogits: true });
        let got: Float32Array | undefined;
        await engine.generate(prompt, { maxTokens: 1, onPrefillLogits: (l) => (got = l) });
        expectClose(got!, want, Number(tol.logits_atol), 0, `prefill logits, chunks of ${chunk}`);
        engine.destroy();
        engine = undefined;
      }
    } finally {
      engine?.destroy();
    }
  });
});
