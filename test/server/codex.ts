// Runs the real Codex CLI (npm @openai/codex, its native binary) against a server on loopback:
// a fresh CODEX_HOME whose config.toml names the server as a custom provider (the README's
// config, nothing else), `codex exec` headless in a scratch folder, bounded in time.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCli, type CliRun } from './cli-process.js';
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

export function runCodex(baseURL: string, model: string, args: string[], timeoutMs: number): Promise<CliRun> {
  return runCli({
    bin: CODEX_BIN,
    args: ['exec', '--skip-git-repo-check', ...args],
    name: 'codex',
    env: (home) => {
      writeFileSync(path.join(home, 'config.toml'), codexConfig(baseURL, model));
      return { HOME: home, CODEX_HOME: home, NO_COLOR: '1', RUST_LOG: 'error' };
    },
    timeoutMs,
  });
}
