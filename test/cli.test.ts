// The CLI as a user runs it: `generate` on an oracle checkpoint with --json, --stats and
// --logits-out, on synthetic:tiny and a hub id (the model resolution every command shares), its
// --help, and clear errors for bad input.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/model/safetensors.js';
import { expectClose } from './helpers/compare.js';
import { manifest, ORACLE, REPO_ROOT, referenceTensors } from './helpers/oracle.js';

const bin = join(REPO_ROOT, 'bin', 'gpt-oss-webgpu.js');
const run = (args: string[], env: Record<string, string> = {}) =>
  promisify(execFile)(process.execPath, [bin, ...args], { maxBuffer: 64 << 20, env: { ...process.env, ...env } });
const tmp = await mkdtemp(join(tmpdir(), 'gpt-oss-cli-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('gpt-oss-webgpu CLI', () => {
  it('--help lists the commands', async () => {
    const { stdout } = await run(['--help']);
    expect(stdout).toContain('generate');
    expect(stdout).toContain('--prompt-ids');
  });

  it('generate --json --stats --logits-out on tiny-e32k4', async () => {
    const man = manifest('tiny-e32k4');
    const logits = join(tmp, 'logits.safetensors');
    const { stdout } = await run([
      'generate', '--model', join(ORACLE, 'tiny-e32k4', 'original'), '--prompt-ids', man.prompt_ids.join(','),
      '--max-tokens', '24', '--temperature', '0', '--json', '--stats', '--kv-dtype', 'f32', '--logits-out', logits,
    ]);
    const out = JSON.parse(stdout) as {
      prompt_ids: number[];
      generated_ids: number[];
      stats: { decode_step: { dispatches: number; submits: number; readbacks: number } };
    };
    expect(out.prompt_ids).toEqual(man.prompt_ids);
    expect(out.generated_ids).toEqual(man.generated_ids);
    expect(out.stats.decode_step.submits).toBe(1);
    expect(out.stats.decode_step.readbacks).toBe(1);
    expect(out.stats.decode_step.dispatches).toBeGreaterThan(0);
    const f = await SafetensorsFile.open(logits);
    const t = f.tensor('logits');
    expect(t.dtype).toBe('F32');
    expect(t.shape).toEqual([man.prompt_ids.length, 640]);
    const got = new Float32Array((await f.readTensorBytes(t)).slice().buffer);
    await f.close();
    const ref = await referenceTensors('tiny-e32k4');
    expectClose(got, ref.get('prefill_logits')!.data, Number(man.tolerances.f32.logits_atol), 0, 'logits-out');
  });

  it('generate --requests runs several requests together, each joining at its arrival step', async () => {
    const man = manifest('tiny-e32k4');
    const file = join(tmp, 'requests.json');
    await writeFile(
      file,
      JSON.stringify([
        { prompt_ids: man.prompt_ids, max_tokens: 24 },
        { prompt_ids: [5, 6, 7, 8], max_tokens: 10, temperature: 0.8, top_p: 0.9, seed: 3, arrival_step: 2 },
        { prompt_ids: man.prompt_ids.slice(0, 40), max_tokens: 3, arrival_step: 4 },
        // arrives after everything else has ended: the engine takes it when it goes idle
        { prompt_ids: [9, 10], max_tokens: 2, arrival_step: 10000 },
      ]),
    );
    const { stdout } = await run(['generate', '--model', join(ORACLE, 'tiny-e32k4', 'hf'), '--requests', file, '--max-num-seqs', '3', '--json']);
    const out = JSON.parse(stdout) as { generated_ids: number[]; finish_reason: string; cached_tokens: number }[];
    expect(out).toHaveLength(4);
    // the oracle's greedy continuation, whatever ran beside it
    expect(out[0]!.generated_ids).toEqual(man.generated_ids);
    expect(out.map((r) => r.generated_ids.length)).toEqual([24, 10, 3, 2]);
    expect(out.map((r) => r.finish_reason)).toEqual(['length', 'length', 'length', 'length']);
    // request 2 shares its first 32 tokens (a page) with request 0
    expect(out[2]!.cached_tokens).toBe(32);
    await expect(run(['generate', '--model', join(ORACLE, 'tiny-e32k4', 'hf'), '--requests', file, '--logits-out', join(tmp, 'x')])).rejects.toMatchObject({ code: 2 });
  });

  it('generate --help prints its usage and exits 0', async () => {
    const { stdout } = await run(['generate', '--help']);
    expect(stdout).toContain('Usage: gpt-oss-webgpu generate');
    expect(stdout).toContain('--prompt-ids-file');
    expect(stdout).toContain('synthetic:SHAPE');
  });

  it('generate resolves --model like serve and bench: synthetic:SHAPE, and a hub id through the Hugging Face cache', async () => {
    const { stdout, stderr } = await run(['generate', '--model', 'synthetic:tiny', '--prompt-ids', '1,2,3', '--max-tokens', '2']);
    expect(stdout).toMatch(/^generated [12] tokens \((length|stop)\): \d+/);
    // Without --json the memory plan comes first, on stderr.
    expect(stderr).toMatch(/^memory plan: weights [\d.]+ MiB, KV cache/m);
    const cache = join(tmp, 'hf-cache');
    await expect(run(['generate', '--model', 'openai/gpt-oss-20b', '--prompt-ids', '1'], { HF_HUB_OFFLINE: '1', HF_HUB_CACHE: cache })).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining(`openai/gpt-oss-20b: offline mode and no complete copy in the cache ${cache}`),
    });
  });

  it('bad input fails with a clear message', async () => {
    await expect(run(['generate', '--model', join(tmp, 'nope'), '--prompt-ids', '1'])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('nope'),
    });
    await expect(run(['generate', '--model', join(ORACLE, 'tiny-e32k4', 'hf'), '--prompt-ids', '1,99999'])).rejects.toMatchObject({
      stderr: expect.stringContaining('99999'),
    });
    await expect(run(['generate', '--bogus'])).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('Usage: gpt-oss-webgpu generate') });
    await expect(run(['generate', '--model', 'synthetic:tiny'])).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('--prompt-ids') });
    await expect(run(['frobnicate'])).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('frobnicate') });
  });
});
