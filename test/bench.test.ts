// `bench --json` on a synthetic model, as CI runs it on lavapipe: the report has every key the
// issue names, the counters that do not depend on the machine, and sane weight-byte figures.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { decodeWeightBytes, stepMacsFloor } from '../src/bench/cost.js';
import { syntheticConfig } from '../src/model/synthetic.js';
import { REPO_ROOT } from './helpers/oracle.js';

describe('bench', () => {
  it('bench --model synthetic:mini --json --profile', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [join(REPO_ROOT, 'bin', 'gpt-oss-webgpu.js'), 'bench', '--model', 'synthetic:mini', '--prompt-tokens', '40', '--gen-tokens', '6', '--json', '--profile', '--prefix-tokens', '64'],
      { maxBuffer: 16 << 20 },
    );
    const r = JSON.parse(stdout) as Record<string, unknown>;
    for (const key of [
      'adapter', 'load_s', 'prefill_tokens_per_s', 'ttft_ms', 'decode_tokens_per_s', 'dispatches_per_step',
      'submits_per_step', 'readbacks_per_step', 'weight_bytes_per_step', 'weight_bytes_min_per_step',
      'bandwidth_gb_per_s', 'roofline_fraction', 'profile_ms_per_step',
    ]) {
      expect(r, key).toHaveProperty(key);
    }
    const c = syntheticConfig('mini');
    // embed, 6 per layer (qkv + RoPE + KV write, attention, out projection, router, mlp1 with the
    // top-k, mlp2), unembedding with the final norm and the argmax, sample
    expect(r.dispatches_per_step).toBe(1 + 6 * 2 + 2);
    expect(r.submits_per_step).toBe(1);
    expect(r.readbacks_per_step).toBe(1);
    expect(r.pipelines_created_per_step).toBe(0);
    expect(r.gen_tokens).toBe(6);
    // what the decode kernels fetched, counted from the dispatches of a step: every weight once
    // (norms and biases widened to f32), against the floor computed from the config
    const wb = decodeWeightBytes(c);
    expect(r.weight_bytes_min_per_token_step).toBe(wb.min);
    expect(r.decode_step_tokens).toBe(1);
    // the measured step's own floor: for one token, the batch-1 floor
    expect(r.weight_bytes_min_per_step).toBe(wb.min);
    // one token's multiply-adds, no padding: each matrix and its k experts once, the unembedding once
    expect(r.macs_per_step).toBe(r.macs_min_per_step);
    expect(r.macs_min_per_step).toBe(stepMacsFloor(c, { tokens: 1, rows: 1 }));
    expect(r.weight_bytes_per_step as number).toBeGreaterThanOrEqual(wb.min);
    expect((r.weight_bytes_per_step as number) / wb.min).toBeLessThan(1.03);
    // a prefill chunk reads each matrix once per tile of tokens, so per token far less than a decode step
    expect(r.prefill_step_tokens).toBe(40);
    expect(r.prefill_weight_bytes_per_token as number).toBeLessThan((r.weight_bytes_per_step as number) / 10);
    // the prefix cache: the second request's 64 shared tokens (two pages) come from the cache
    expect(r.prefix_cache).toMatchObject({ cached_tokens: 64, uncached_cached_tokens: 0 });
    expect(r.bandwidth_gb_per_s as number).toBeGreaterThan(0);
    expect(r.roofline_fraction as number).toBeGreaterThan(0);
    const profile = r.profile_ms_per_step as Record<string, number>;
    expect(Object.keys(profile)).toEqual(expect.arrayContaining(['qkv', 'attn.decode', 'attn_out', 'router', 'mlp1', 'mlp2', 'unembedding', 'sample']));
  });

  it('the 20b and 120b floors match performance.md (3.71 GB and 5.00 GB per token)', () => {
    expect(decodeWeightBytes(syntheticConfig('20b')).min / 1e9).toBeCloseTo(3.71, 1);
    expect(decodeWeightBytes(syntheticConfig('120b')).min / 1e9).toBeCloseTo(5.0, 1);
  });
});
