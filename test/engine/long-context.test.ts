// Long sequences on small synthetic models: 4100 positions (far past the sliding window) against
// the float64 reference, and a prompt that fills a whole 131072-position context through the CLI.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { openCheckpoint } from '../../src/model/checkpoint.js';
import { configFromPreset } from '../../src/model/config.js';
import { writeSyntheticCheckpoint } from '../../src/model/synthetic.js';
import { expectClose } from '../helpers/compare.js';
import { testGpu } from '../helpers/gpu.js';
import { REPO_ROOT } from '../helpers/oracle.js';
import { ReferenceModel } from '../helpers/reference-model.js';
import { rng } from '../helpers/random.js';

const gpu = await testGpu();
const dir = await mkdtemp(join(tmpdir(), 'gpt-oss-long-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('long context', () => {
  it('4100 positions with window 32: decode matches the float64 reference', async () => {
    const cfg = configFromPreset({
      numLayers: 2,
      numExperts: 4,
      expertsPerToken: 2,
      vocabSize: 256,
      hiddenSize: 64,
      intermediateSize: 64,
      numHeads: 2,
      numKvHeads: 1,
      headDim: 64,
      slidingWindow: 32,
    });
    const model = join(dir, 'small');
    await writeSyntheticCheckpoint(model, cfg, 7);
    const r = rng(3);
    const prompt = Array.from({ length: 4100 }, () => Math.floor(r() * cfg.vocabSize));
    const engine = await Engine.load(model, { gpu, context: 4104, maxBatchTokens: 512 });
    const res = await engine.generate(prompt, { maxTokens: 4 });
    const gpuLast = await engine.lastLogits();
    engine.destroy();

    const ckpt = await openCheckpoint(model);
    const ref = await ReferenceModel.load(ckpt);
    await ckpt.close();
    for (let i = 0; i < prompt.length - 1; i++) ref.step(prompt[i]!, false);
    let s = ref.step(prompt.at(-1)!);
    const want: number[] = [];
    for (let j = 0; j < 4; j++) {
      const l = s.logits;
      const sorted = [...l].sort((a, b) => b - a);
      // a tie this close would make the comparison meaningless
      expect(sorted[0]! - sorted[1]!).toBeGreaterThan(1e-3);
      want.push(l.indexOf(sorted[0]!));
      if (j < 3) s = ref.step(want.at(-1)!);
    }
    expect(res.tokens).toEqual(want);
    // the KV cache holds f16 (2^-11 relative rounding of every key and value): 1e-2, not f32's 2e-3
    expectClose(gpuLast, s.logits, 1e-2, 1e-4, 'logits at position 4103');
  });

  it('a prompt filling the whole 131072-position context runs through `generate`', async () => {
    // Both layers slide (window 128): a full-attention layer would make this prefill quadratic
    // (~1e12 multiply-adds), hours on a CPU. Positions, the RoPE table, the sliding ring wrapping
    // 1000 times and chunked prefill are what this checks; full layers at long context are
    // covered by the 4100-position test above and the attention kernel tests.
    const cfg = configFromPreset({
      layerTypes: ['sliding', 'sliding'],
      numLayers: 2,
      numExperts: 4,
      expertsPerToken: 2,
      vocabSize: 128,
      hiddenSize: 64,
      intermediateSize: 64,
      numHeads: 1,
      numKvHeads: 1,
      headDim: 64,
      slidingWindow: 128,
    });
    const model = join(dir, 'ctx');
    await writeSyntheticCheckpoint(model, cfg, 11);
    const r = rng(5);
    const prompt = Array.from({ length: 131071 }, () => Math.floor(r() * cfg.vocabSize));
    const file = join(dir, 'prompt.json');
    await writeFile(file, JSON.stringify(prompt));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [join(REPO_ROOT, 'bin', 'gpt-oss-webgpu.js'), 'generate', '--model', model, '--prompt-ids-file', file, '--max-tokens', '4', '--chunk', '1024', '--json', '--stats'],
      { maxBuffer: 64 << 20, timeout: 540_000 }, // killed before vitest's 600 s limit, never orphaned
    );
    const out = JSON.parse(stdout) as { generated_ids: number[]; finish_reason: string; stats: { prefill: { chunks: number } } };
    // the context (prompt + max tokens, capped at max_position_embeddings = 131072) fills up: the
    // first token comes from the prompt's last position, the second from position 131071
    expect(out.generated_ids.length).toBe(2);
    expect(out.finish_reason).toBe('context');
    expect(out.stats.prefill.chunks).toBe(128);
    for (const id of out.generated_ids) expect(id).toBeLessThan(cfg.vocabSize);
  });
});
