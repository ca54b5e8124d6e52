// The engine under Deno 2 (the npm package `deno`, a pinned devDependency), with the same Dawn
// addon as under Node: `deno run -A dist/cli.js generate` on an oracle model must give the
// reference's greedy tokens. Deno loads `webgpu` from our node_modules (deno.json:
// nodeModulesDir "manual"), must not download anything (--cached-only, a fresh DENO_DIR, no
// proxy reachable), and must use Dawn rather than its own navigator.gpu (which has no subgroups).
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { manifest, ORACLE, REPO_ROOT } from './helpers/oracle.js';

const DENO_CANDIDATES = [
  join(REPO_ROOT, 'node_modules', '@deno', 'linux-x64-glibc', 'deno'),
  join(REPO_ROOT, 'node_modules', '.bin', 'deno'),
];
const deno = DENO_CANDIDATES.find((p) => existsSync(p));
const cli = join(REPO_ROOT, 'dist', 'cli.js');
const denoDir = await mkdtemp(join(tmpdir(), 'gpt-oss-deno-'));
afterAll(() => rm(denoDir, { recursive: true, force: true }));

const env = {
  ...process.env,
  DENO_DIR: denoDir,
  DENO_NO_UPDATE_CHECK: '1',
  DENO_NO_PROMPT: '1',
  NO_COLOR: '1',
  XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp',
  // Anything Deno tried to fetch would fail here instead of quietly succeeding.
  HTTPS_PROXY: 'http://127.0.0.1:9',
  HTTP_PROXY: 'http://127.0.0.1:9',
  NPM_CONFIG_REGISTRY: 'http://127.0.0.1:9/',
};

function runDeno(args: string[]) {
  if (!deno) throw new Error(`no deno binary (npm ci installs the devDependency deno): looked at ${DENO_CANDIDATES.join(', ')}`);
  return promisify(execFile)(deno, args, { cwd: REPO_ROOT, env, maxBuffer: 16 << 20, timeout: 180_000 });
}

describe('Deno', () => {
  it('deno is the pinned 2.x from node_modules', async () => {
    const { stdout } = await runDeno(['--version']);
    expect(stdout).toMatch(/^deno 2\.\d+\.\d+/);
  });

  for (const layout of ['hf', 'original'] as const) {
    it(`generate on tiny-e64k2 (${layout}) gives the oracle's tokens, through Dawn`, async () => {
      expect(existsSync(cli), `${cli} (npm run build)`).toBe(true);
      const man = manifest('tiny-e64k2');
      const { stdout } = await runDeno([
        'run', '-A', '--cached-only', '--no-lock', cli,
        'generate', '--model', join(ORACLE, 'tiny-e64k2', layout), '--prompt-ids', man.prompt_ids.join(','),
        '--max-tokens', String(man.generated_ids.length), '--json', '--stats',
      ]);
      const out = JSON.parse(stdout) as {
        generated_ids: number[];
        finish_reason: string;
        stats: { subgroups: boolean; adapter: { vendor: string } };
      };
      expect(out.generated_ids).toEqual(man.generated_ids);
      expect(out.finish_reason).toBe('length');
      // Deno's built-in WebGPU has no subgroups; the engine uses them only through Dawn.
      expect(out.stats.subgroups).toBe(true);
      // Nothing was downloaded into the fresh DENO_DIR.
      const npmCache = join(denoDir, 'npm');
      expect(existsSync(npmCache) ? readdirSync(npmCache) : []).toEqual([]);
    });
  }
});
