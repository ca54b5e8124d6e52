// scripts/make-synthetic-checkpoint.mjs writes a checkpoint the loader, the engine and the
// tokenizer all accept, in the Hugging Face layout.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine.js';
import { openCheckpoint } from '../src/model/checkpoint.js';
import { END_ROW_NORM, syntheticConfig } from '../src/model/synthetic.js';
import { loadModelTokenizer } from '../src/tokenizer/index.js';
import { testGpu } from './helpers/gpu.js';
import { REPO_ROOT } from './helpers/oracle.js';

const tmp = await mkdtemp(join(tmpdir(), 'gpt-oss-synth-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('make-synthetic-checkpoint', () => {
  it('writes config.json, model.safetensors and tokenizer.json for synthetic:tiny', async () => {
    const dir = join(tmp, 'tiny');
    await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'scripts', 'make-synthetic-checkpoint.mjs'), dir, 'tiny', '3']);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) expect(existsSync(join(dir, f)), f).toBe(true);
    const ckpt = await openCheckpoint(dir);
    expect(ckpt.layout).toBe('hf');
    expect(ckpt.config).toEqual(syntheticConfig('tiny'));
    // <|return|>'s unembedding row has the larger norm that makes answers end (~30 tokens)
    const H = ckpt.config.hiddenSize;
    const un = await ckpt.readF32(ckpt.tensor('unembedding'));
    const norm = (row: number) => Math.hypot(...un.subarray(row * H, (row + 1) * H));
    expect(norm(200002)).toBeGreaterThan(0.8 * END_ROW_NORM);
    expect(norm(200002)).toBeLessThan(1.2 * END_ROW_NORM);
    for (const row of [0, 1000, 200001, 200012]) expect(norm(row)).toBeLessThan(2);
    await ckpt.close();
    const tok = await loadModelTokenizer(dir);
    expect(tok.encodeOrdinary('hello world')).toEqual([24912, 2375]);
    const engine = await Engine.load(dir, { gpu: await testGpu(), context: 16 });
    const res = await engine.generate(tok.encodeOrdinary('hello world'), { maxTokens: 3 });
    engine.destroy();
    expect(res.tokens).toHaveLength(3);
    for (const id of res.tokens) expect(id).toBeLessThan(syntheticConfig('tiny').vocabSize);
  });
});
