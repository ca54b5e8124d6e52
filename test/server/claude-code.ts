// Runs the real Claude Code CLI (npm @anthropic-ai/claude-code, its native binary) against a
// server on loopback: a fresh HOME, ANTHROPIC_BASE_URL = the server's root and an API key (the
// README's setup, nothing else), `claude -p` headless in a scratch folder, bounded in time, with
// Claude Code's non-essential traffic (telemetry, error reports, update checks) switched off.
import path from 'node:path';
import { runCli, type CliRun } from './cli-process.js';
import { REPO_ROOT } from './helpers.js';

/** The pinned devDependency's binary; CLAUDE_CODE_BIN points elsewhere (a copy installed outside the repo). */
export const CLAUDE_BIN = process.env['CLAUDE_CODE_BIN'] ?? path.join(REPO_ROOT, 'node_modules', '.bin', 'claude');

export function runClaude(root: string, model: string, args: string[], timeoutMs: number): Promise<CliRun> {
  return runCli({
    bin: CLAUDE_BIN,
    args: ['-p', '--model', model, ...args],
    name: 'claude',
    env: (home) => ({
      HOME: home,
      ANTHROPIC_BASE_URL: root,
      ANTHROPIC_API_KEY: 'sk-claude-code-test',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_AUTOUPDATER: '1',
      DISABLE_TELEMETRY: '1',
      DISABLE_ERROR_REPORTING: '1',
      NO_COLOR: '1',
    }),
    timeoutMs,
  });
}
