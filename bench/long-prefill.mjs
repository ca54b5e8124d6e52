// A prompt that fills the whole 131072-position context of a small model with one sliding and one
// full-attention layer, through `generate --json --stats`: the time of the quadratic prefill (the
// flash-attention prefill's job). The model is the long-context test's (64 wide, one head), with
// its second layer switched to full attention.
// Usage: npm run build && node bench/long-prefill.mjs [--prompt-tokens N] [--chunk K] [--kv-dtype f16|f32]
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';
import { configFromPreset } from '../dist/model/config.js';
import { writeSyntheticCheckpoint } from '../dist/model/synthetic.js';

const { values: v } = parseArgs({
  options: { 'prompt-tokens': { type: 'string', default: '131071' }, chunk: { type: 'string', default: '1024' }, 'kv-dtype': { type: 'string', default: 'f16' } },
});
const n = Number(v['prompt-tokens']);
const dir = await mkdtemp(join(tmpdir(), 'gpt-oss-long-prefill-'));
try {
  const cfg = configFromPreset({
    layerTypes: ['sliding', 'full'],
    numLayers: 2, numExperts: 4, expertsPerToken: 2, vocabSize: 128, hiddenSize: 64, intermediateSize: 64,
    numHeads: 1, numKvHeads: 1, headDim: 64, slidingWindow: 128,
  });
  await writeSyntheticCheckpoint(join(dir, 'model'), cfg, 11);
  let s = 5;
  const prompt = Array.from({ length: n }, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0), s % cfg.vocabSize));
  await writeFile(join(dir, 'prompt.json'), JSON.stringify(prompt));
  const bin = join(import.meta.dirname, '..', 'bin', 'gpt-oss-webgpu.js');
  const args = ['generate', '--model', join(dir, 'model'), '--prompt-ids-file', join(dir, 'prompt.json'), '--max-tokens', '1', '--chunk', v.chunk, '--kv-dtype', v['kv-dtype'], '--json', '--stats'];
  const t0 = performance.now();
  const { stdout } = await promisify(execFile)(process.execPath, [bin, ...args], { maxBuffer: 64 << 20 });
  const wall = (performance.now() - t0) / 1000;
  const out = JSON.parse(stdout);
  console.log(JSON.stringify({ prompt_tokens: n, chunk: Number(v.chunk), kv_dtype: v['kv-dtype'], wall_s: Math.round(wall * 10) / 10, prefill_ms: out.prefill_ms ?? out.timings?.prefill_ms, finish_reason: out.finish_reason, generated_ids: out.generated_ids, prefill: out.stats?.prefill }));
} finally {
  await rm(dir, { recursive: true, force: true });
}
