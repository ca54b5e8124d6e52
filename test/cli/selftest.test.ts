// `gpt-oss-webgpu selftest` as gpu-check runs it: on an adapter without subgroup matrices it runs
// the emulated twins, says the real kernels were not exercised and exits 0; on one with them it
// must have run the real kernels (exercised 'real') to pass. Needs dist/ (npm test builds it).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/oracle.js';

const bin = join(REPO_ROOT, 'bin', 'gpt-oss-webgpu.js');
const run = (args: string[]) => promisify(execFile)(process.execPath, [bin, ...args], { maxBuffer: 16 << 20 });

describe('selftest', () => {
  it('--json reports which kernels ran and passes only on what it exercised', async () => {
    const { stdout } = await run(['selftest', '--json']);
    const r = JSON.parse(stdout) as {
      advertised: boolean;
      ok: boolean;
      subgroup_matrix: { used: boolean; exercised: string; reason: string };
      cases: { name: string; ok: boolean }[];
      dispatch_gap: { usPerDispatch: number; counted: boolean } | null;
    };
    expect(r.ok).toBe(true);
    expect(r.cases.length).toBeGreaterThanOrEqual(7);
    expect(r.cases.filter((c) => !c.ok)).toEqual([]);
    expect(r.subgroup_matrix.exercised).toBe(r.advertised ? 'real' : 'twin');
    expect(r.subgroup_matrix.used).toBe(r.advertised);
    if (r.dispatch_gap) expect(r.dispatch_gap.counted).toBe(true);
  });

  it('says plainly when the real kernels were not exercised', async () => {
    const { stdout } = await run(['selftest', '--no-dispatch-gap']);
    expect(stdout).toMatch(/selftest: PASS/);
    if (!stdout.includes(': advertised;')) expect(stdout).toContain('the REAL subgroup-matrix kernels were NOT exercised');
  });
});
