// Servers run as real processes (`node bin/…` or `npx gpt-oss-webgpu serve`) for the tests that
// need a process: signals, exit codes, pipes. Loopback only; every wait is bounded.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { REPO_ROOT } from '../helpers/oracle.js';
import { until } from '../helpers/until.js';

/**
 * A server started as a real process, reading its JSON log lines: the URL it listens on, its
 * pid (npx runs it below npm and a shell), and what it logs.
 */
export interface ServerProcess {
  child: ChildProcess;
  url: string;
  pid: number;
  logs: Array<Record<string, unknown>>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `command args` with stdout and stderr piped here, and waits until its model is ready. */
export async function startProcess(command: string, args: string[], options: SpawnOptions = {}): Promise<ServerProcess> {
  const child = spawn(command, args, { cwd: REPO_ROOT, ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = true;
      resolve({ code, signal });
    }),
  );
  let buffered = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  const failIf = () => (exited ? `the server process exited: ${stderr}` : null);
  const listening = await until('the server listens', () => logs.find((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('Server listening at ')), { failIf, timeoutMs: 120_000, everyMs: 20 });
  const url = String(listening['msg']).slice('Server listening at '.length);
  await until('the model is ready', () => logs.find((l) => l['msg'] === 'model ready'), { failIf, timeoutMs: 120_000, everyMs: 20 });
  return { child, url, pid: Number(listening['pid']), logs, exit };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The live (not zombie) processes of a process group, from /proc. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ")".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(Number(entry));
  }
  return out;
}

/** Milliseconds until every process of the group is gone; throws after `limitMs`, killing what is left. */
export async function groupGone(pgid: number, limitMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (groupMembers(pgid).length === 0) return performance.now() - t0;
    if (performance.now() - t0 > limitMs) {
      const left = groupMembers(pgid).map((p) => `${p}: ${readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ')}`);
      killGroup(pgid, 'SIGKILL');
      throw new Error(`process group ${pgid} still ran ${limitMs} ms after the signal: ${left.join('; ')}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
