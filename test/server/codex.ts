// Runs the real Codex CLI (npm @openai/codex, its native binary) against a server on loopback:
// a fresh CODEX_HOME whose config.toml names the server as a custom provider (the README's
// config, nothing else), `codex exec` headless in a scratch folder, bounded in time.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './helpers.js';

export const CODEX_BIN = path.join(REPO_ROOT, 'node_modules', '.bin', 'codex');

/** The provider block the README documents. */
export function codexConfig(baseURL: string, model: string): string {
  return [
    `model = ${JSON.stringify(model)}`,
    'model_provider = "gpt-oss-webgpu"',
    '',
    '[model_providers.gpt-oss-webgpu]',
    'name = "gpt-oss-webgpu"',
    `base_url = ${JSON.stringify(baseURL)}`,
    'wire_api = "responses"',
    '',
  ].join('\n');
}

export interface CodexRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function runCodex(baseURL: string, model: string, args: string[], timeoutMs: number): Promise<CodexRun> {
  // Not under /tmp: Codex refuses to put its helper links in a temporary folder (it still runs).
  const home = mkdtempSync(path.join(tmpdir(), 'codex-home-'));
  const work = mkdtempSync(path.join(tmpdir(), 'codex-work-'));
  writeFileSync(path.join(home, 'config.toml'), codexConfig(baseURL, model));
  try {
    return await new Promise<CodexRun>((resolve, reject) => {
      const child = spawn(CODEX_BIN, ['exec', '--skip-git-repo-check', ...args], {
        cwd: work,
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home, CODEX_HOME: home, NO_COLOR: '1', RUST_LOG: 'error' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  } finally {
    rmSync(home, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
}
