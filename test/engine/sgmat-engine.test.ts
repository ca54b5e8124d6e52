// The subgroup-matrix GEMMs wired into the engine, through their emulated twins
// (GPT_OSS_WEBGPU_SGMAT=emulate puts the twins where the self-check would put the real kernels):
// a 200-token prompt in one chunk runs the dense products on matmul_sgmat and the experts on
// moe_route (64-row tiles) + moe_gemm_sgmat. Its logits must differ from the f32 engine's (the
// kernels did run: f16 operands) and stay within 2^-7 of the logits' range of the float64
// reference: each activation rounded to f16 is off by up to 2^-11 relative, compounded over the
// layers' products, far below that and far above the f32 path's error.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { openCheckpoint } from '../../src/model/checkpoint.js';
import { testGpu } from '../helpers/gpu.js';
import { ORACLE } from '../helpers/oracle.js';
import { rng } from '../helpers/random.js';
import { ReferenceModel } from '../helpers/reference-model.js';

const gpu = await testGpu();
const P = 200;

afterEach(() => {
  delete process.env.GPT_OSS_WEBGPU_SGMAT;
});

async function prefillLogits(dir: string, prompt: number[], env?: string) {
  if (env) process.env.GPT_OSS_WEBGPU_SGMAT = env;
  const engine = await Engine.load(dir, { gpu, context: P + 2, maxBatchTokens: P, kvDtype: 'f32', allLogits: true });
  delete process.env.GPT_OSS_WEBGPU_SGMAT;
  try {
    let got: Float32Array | undefined;
    await engine.generate(prompt, { maxTokens: 1, onPrefillLogits: (l) => (got = l) });
    return { logits: got!, choice: engine.subgroupMatrix };
  } finally {
    engine.destroy();
  }
}

describe('subgroup-matrix twins in the engine', () => {
  it(`tiny-e64k2: a ${P}-token chunk on the twins matches the float64 reference within the f16 bound`, async () => {
    const dir = join(ORACLE, 'tiny-e64k2', 'hf');
    const ckpt = await openCheckpoint(dir);
    const ref = await ReferenceModel.load(ckpt);
    await ckpt.close();
    const r = rng(P);
    const V = ref.config.vocabSize;
    const prompt = Array.from({ length: P }, () => Math.floor(r() * V));
    const want = new Float64Array(P * V);
    prompt.forEach((id, t) => want.set(ref.step(id).logits, t * V));
    const plain = await prefillLogits(dir, prompt);
    expect(plain.choice.used).toBe(gpu.features.subgroupMatrix);
    const twin = await prefillLogits(dir, prompt, 'emulate');
    expect(twin.choice).toMatchObject({ used: true, moe: true });
    expect(twin.choice.reason).toMatch(/emulated twins/);
    let range = 0;
    for (const v of want) range = Math.max(range, Math.abs(v));
    let maxErr = 0;
    let differs = 0;
    for (let i = 0; i < want.length; i++) {
      maxErr = Math.max(maxErr, Math.abs(twin.logits[i]! - want[i]!));
      if (twin.logits[i] !== plain.logits[i]) differs++;
    }
    expect(maxErr).toBeLessThan(2 ** -7 * range);
    expect(differs).toBeGreaterThan(want.length / 2);
  });
});
