// captureForward in whichever variants the step's size picks: fewer than 8 tokens run the fused
// blocks, 8 or more the unfused ones; both keep every layer's intermediates, which match the
// oracle's float64 forward over the same prompt positions (causal: rows 0..T-1 of the full run).
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { FUSED_MAX_TOKENS } from '../../src/engine/dispatch-policy.js';
import { expectClose } from '../helpers/compare.js';
import { testGpu } from '../helpers/gpu.js';
import { manifest, ORACLE, referenceTensors } from '../helpers/oracle.js';

const gpu = await testGpu();
const model = 'tiny-e128k4';
const man = manifest(model);
const tol = man.tolerances.f32;
const ref = await referenceTensors(model);
const engine = await Engine.load(join(ORACLE, model, 'hf'), { gpu, context: 64, maxBatchTokens: 32, kvDtype: 'f32' });
afterAll(() => engine.destroy());

describe('captureForward', () => {
  it.each([5, 1, FUSED_MAX_TOKENS, 19])('%i tokens: every layer\'s attention output, MoE output and router logits', async (T) => {
    const cap = await engine.captureForward(man.prompt_ids.slice(0, T));
    const c = engine.config;
    const H = c.hiddenSize;
    const E = c.numExperts;
    for (let l = 0; l < c.numLayers; l++) {
      const rows = (name: string, n: number) => ref.get(`layers.${l}.${name}`)!.data.subarray(0, T * n);
      expectClose(cap.attnOut[l]!.subarray(0, T * H), rows('attn_out', H), Number(tol.attn_out_atol), 0, `T ${T} layer ${l} attn_out`);
      expectClose(cap.mlpOut[l]!.subarray(0, T * H), rows('mlp_out', H), Number(tol.mlp_out_atol), 0, `T ${T} layer ${l} mlp_out`);
      expectClose(cap.routerLogits[l]!.subarray(0, T * E), rows('router_logits', E), Number(tol.router_logits_atol), 0, `T ${T} layer ${l} router logits`);
    }
    expect(engine.isBusy).toBe(false);
    expect(engine.batching().kvPagesUsed).toBe(0);
  });
});
