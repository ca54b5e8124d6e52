// Runs the real Claude Code CLI (npm @anthropic-ai/claude-code, its native binary) against a
// server on loopback: a fresh HOME, ANTHROPIC_BASE_URL = the server's root and an API key (the
// README's setup, nothing else), `claude -p` headless in a scratch folder, bounded in time, with
// Claude Code's non-essential traffic (telemetry, error reports, update checks) switched off.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './helpers.js';

/** The pinned devDependency's binary; CLAUDE_CODE_BIN points elsewhere (a copy installed outside the repo). */
export const CLAUDE_BIN = process.env['CLAUDE_CODE_BIN'] ?? path.join(REPO_ROOT, 'node_modules', '.bin', 'claude');

export interface ClaudeRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function runClaude(root: string, model: string, args: string[], timeoutMs: number): Promise<ClaudeRun> {
  const home = mkdtempSync(path.join(tmpdir(), 'claude-home-'));
  const work = mkdtempSync(path.join(tmpdir(), 'claude-work-'));
  try {
    return await new Promise<ClaudeRun>((resolve, reject) => {
      const child = spawn(CLAUDE_BIN, ['-p', '--model', model, ...args], {
        cwd: work,
        env: {
          PATH: process.env['PATH'] ?? '/usr/bin:/bin',
          HOME: home,
          ANTHROPIC_BASE_URL: root,
          ANTHROPIC_API_KEY: 'sk-claude-code-test',
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
          DISABLE_AUTOUPDATER: '1',
          DISABLE_TELEMETRY: '1',
          DISABLE_ERROR_REPORTING: '1',
          NO_COLOR: '1',
        },
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
