// Runs a real client CLI (Codex, Claude Code: their native binaries from npm) headless against a
// server on loopback: a fresh HOME and a scratch working folder (both removed after), the
// environment the caller gives and nothing else, killed once the time is up.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function runCli(o: {
  bin: string;
  args: string[];
  /** Prefix of the scratch folders' names. */
  name: string;
  /** The whole environment (PATH is added), given the fresh home; may write files into it. */
  env: (home: string) => Record<string, string>;
  timeoutMs: number;
}): Promise<CliRun> {
  // Not under /tmp itself: Codex refuses to put its helper links in a temporary folder (it still runs).
  const home = mkdtempSync(path.join(tmpdir(), `${o.name}-home-`));
  const work = mkdtempSync(path.join(tmpdir(), `${o.name}-work-`));
  try {
    const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...o.env(home) };
    return await new Promise<CliRun>((resolve, reject) => {
      const child = spawn(o.bin, o.args, { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
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
