// The whole engine against OpenAI's reference implementation (float64), for every public oracle
// model in both checkpoint layouts: prefill logits within the f32 tolerance, the 24 greedy tokens
// exactly, the last step's logits, and the selected expert sets at every prompt position.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { openCheckpoint } from '../../src/model/checkpoint.js';
import { expectClose } from '../helpers/compare.js';
import { testGpu } from '../helpers/gpu.js';
import { manifest, ORACLE, ORACLE_MODELS, referenceTensors } from '../helpers/oracle.js';
import { ReferenceModel } from '../helpers/reference-model.js';

const gpu = await testGpu();

function sets(ids: ArrayLike<number>, k: number, row: number): number[] {
  return Array.from({ length: k }, (_, j) => ids[row * k + j]!).sort((a, b) => a - b);
}

describe.each(ORACLE_MODELS)('oracle %s', (model) => {
  const man = manifest(model);
  const P = man.prompt_ids.length;
  const tol = man.tolerances.f32;

  it.each([
    // the HF layout prefills in chunks far smaller than the prompt (crossing the sliding window
    // several times), the original layout in one chunk
    ['hf', 16, 'f16', undefined],
    ['hf', 16, 'f32', undefined],
    ['original', 256, 'f16', undefined],
    // shards of at most 40000 bytes: embedding, unembedding and experts split across several bindings
    ['hf', 16, 'f32', 40000],
  ] as const)('%s layout (prefill chunk %i, %s KV, shards %s): prefill logits, greedy tokens, last step logits', async (layout, chunk, kvDtype, maxBinding) => {
    const ref = await referenceTensors(model);
    const engine = await Engine.load(join(ORACLE, model, layout), {
      gpu,
      allLogits: true,
      context: P + 24,
      maxBatchTokens: chunk,
      kvDtype,
      shardBytes: maxBinding,
    });
    const atol = kvDtype === 'f32' ? Number(tol.logits_atol) : Number(man.tolerances.f16.logits_atol) / 5;
    try {
      let prefill: Float32Array | undefined;
      const res = await engine.generate(man.prompt_ids, { maxTokens: 24, onPrefillLogits: (l) => (prefill = l) });
      expect(res.tokens).toEqual(man.generated_ids);
      expect(res.finishReason).toBe('length');
      expectClose(prefill!, ref.get('prefill_logits')!.data, atol, 0, 'prefill logits');
      const V = engine.config.vocabSize;
      const step = ref.get('step_logits')!.data.subarray(23 * V, 24 * V);
      expectClose(await engine.lastLogits(), step, atol, 0, 'step 23 logits');
      // one decode step: one submit, one readback, no pipeline created
      expect(engine.stats.decodeStep.submits).toBe(1);
      expect(engine.stats.decodeStep.readbacks).toBe(1);
      expect(engine.stats.decodeStep.pipelinesCreated).toBe(0);
    } finally {
      engine.destroy();
    }
  });

  it('expert sets and per-layer intermediates at every prompt position', async () => {
    const ref = await referenceTensors(model);
    const dir = join(ORACLE, model, 'hf');
    const engine = await Engine.load(dir, { gpu, context: P, maxBatchTokens: P, kvDtype: 'f32' });
    const ckpt = await openCheckpoint(dir);
    const cpu = await ReferenceModel.load(ckpt);
    await ckpt.close();
    try {
      const cap = await engine.captureForward(man.prompt_ids);
      const c = engine.config;
      const k = c.expertsPerToken;
      // the float64 TypeScript reference itself agrees with the oracle
      const cpuSets: number[][][] = c.layerTypes.map(() => []);
      let last: Float64Array = new Float64Array(0);
      for (const id of man.prompt_ids) {
        const s = cpu.step(id);
        s.experts.forEach((m, l) => cpuSets[l]!.push([...m.keys()].sort((a, b) => a - b)));
        last = s.logits;
      }
      const V = c.vocabSize;
      expectClose(last, ref.get('prefill_logits')!.data.subarray((P - 1) * V, P * V), 1e-5, 0, 'float64 reference model');
      for (let l = 0; l < c.numLayers; l++) {
        const { ids, weights } = await engine.routing(l, P);
        for (let t = 0; t < P; t++) {
          expect(sets(ids, k, t), `layer ${l} position ${t}`).toEqual(cpuSets[l]![t]);
        }
        const oracleIds = ref.get(`layers.${l}.expert_indices`);
        if (!oracleIds) continue;
        // tiny-e128k4 carries the per-layer intermediates
        expectClose(cap.attnOut[l]!, ref.get(`layers.${l}.attn_out`)!.data, Number(tol.attn_out_atol), 0, `layer ${l} attn_out`);
        expectClose(cap.mlpOut[l]!, ref.get(`layers.${l}.mlp_out`)!.data, Number(tol.mlp_out_atol), 0, `layer ${l} mlp_out`);
        expectClose(
          cap.routerLogits[l]!,
          ref.get(`layers.${l}.router_logits`)!.data,
          Number(tol.router_logits_atol),
          0,
          `layer ${l} router logits`,
        );
        const ow = ref.get(`layers.${l}.expert_weights`)!.data;
        for (let t = 0; t < P; t++) {
          expect(sets(ids, k, t)).toEqual(sets(oracleIds.data, k, t));
          const mine = new Map(Array.from({ length: k }, (_, j) => [ids[t * k + j]!, weights[t * k + j]!]));
          for (let j = 0; j < k; j++) {
            const w = mine.get(oracleIds.data[t * k + j]!)!;
            expect(Math.abs(w - ow[t * k + j]!)).toBeLessThanOrEqual(Number(tol.expert_weights_atol));
          }
        }
      }
    } finally {
      engine.destroy();
    }
  });
});
