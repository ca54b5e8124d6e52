// A stopped server process always exits, within --shutdown-grace-seconds + 5 s of the first
// signal, whatever its stdout is: a FIFO that nobody reads (the pipe fills, every write fails
// with EAGAIN), a pipe whose reader is killed with it (EPIPE), or a pipe read to the end. Each
// server is started through npx, as users start it, and the signal goes to its whole process
// group, as a terminal's Ctrl-C or a supervisor does. synthetic:tiny with a small context keeps
// each start short.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { FIXED_LENGTH, REPO_ROOT, until } from './helpers.js';
import { freePort, groupGone, killGroup, startProcess } from './processes.js';

const GRACE_SECONDS = 1;
/** What the server promises: the grace period plus 5 s. */
const DEADLINE_MS = (GRACE_SECONDS + 5) * 1000;
/** Process teardown after the deadline fired (measured from here, not inside the server). */
const SLACK_MS = 2000;
const SERVE = ['gpt-oss-webgpu', 'serve', '--model', 'synthetic:tiny', '--context', '256', '--max-num-seqs', '2', '--shutdown-grace-seconds', String(GRACE_SECONDS)];

const dir = mkdtempSync(path.join(tmpdir(), 'gpt-oss-shutdown-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function healthy(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/health`)).status === 200;
  } catch {
    return false;
  }
}

describe('shutdown deadline', () => {
  it('stdout into a FIFO nobody reads: ~300 requests fill the pipe, SIGTERM to the npx group, it exits', async () => {
    const fifo = path.join(dir, 'stdout.fifo');
    execFileSync('mkfifo', [fifo]);
    // A reader that never reads: the writer can open the FIFO, and the pipe fills up.
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, 'w');
    const port = await freePort();
    const child = spawn('npx', [...SERVE, '--port', String(port)], { cwd: REPO_ROOT, stdio: ['ignore', writer, 'ignore'], detached: true });
    closeSync(writer);
    const url = `http://127.0.0.1:${port}`;
    try {
      for (const t0 = Date.now(); !(await healthy(url)); await new Promise((r) => setTimeout(r, 100))) {
        if (Date.now() - t0 > 120_000) throw new Error('the server did not become healthy');
      }
      // Each request logs two lines (~250 bytes each): 300 of them are more than the pipe holds.
      for (let i = 0; i < 300; i += 10) {
        await Promise.all(Array.from({ length: 10 }, () => fetch(`${url}/v1/models`).then((r) => r.text())));
      }
      const done = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'Hi', max_tokens: 2 }) });
      expect(done.status).toBe(200);
      killGroup(child.pid!, 'SIGTERM');
      const ms = await groupGone(child.pid!, DEADLINE_MS + SLACK_MS);
      expect(ms).toBeLessThan(DEADLINE_MS + SLACK_MS);
      // The pipe was full: it holds as much as it can (64 KiB on Linux), none of it read.
      const buf = Buffer.alloc(1 << 20);
      let held = 0;
      for (;;) {
        let n = 0;
        try {
          n = readSync(reader, buf, held, buf.length - held, null);
        } catch (e) {
          // Empty, with a writer still open somewhere (npm may leave a helper behind): all read.
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        }
        if (n <= 0) break;
        held += n;
      }
      expect(held).toBeGreaterThanOrEqual(60_000);
    } finally {
      killGroup(child.pid!, 'SIGKILL');
      closeSync(reader);
    }
  });

  it('`npx … serve 2>&1 | cat > log` in one process group: SIGTERM to the group (cat dies too), it exits', async () => {
    const log = path.join(dir, 'serve.log');
    const command = `npx ${SERVE.join(' ')} --port 0 2>&1 | cat > ${log}`;
    const child = spawn('sh', ['-c', command], { cwd: REPO_ROOT, stdio: 'ignore', detached: true });
    try {
      const lines = () => readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      const logged = (msg: (m: string) => boolean) => {
        try {
          return lines().find((l) => typeof l['msg'] === 'string' && msg(l['msg']));
        } catch {
          return undefined;
        }
      };
      const listening = await until('the server listens', () => logged((m) => m.startsWith('Server listening at ')), { timeoutMs: 120_000, everyMs: 50 });
      await until('the model is ready', () => logged((m) => m === 'model ready'), { timeoutMs: 120_000, everyMs: 50 });
      const url = String(listening['msg']).slice('Server listening at '.length);
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
      for (let i = 0; i < 3; i++) await client.completions.create({ model: 'synthetic:tiny', prompt: `Hi ${i}`, max_tokens: 2 });
      killGroup(child.pid!, 'SIGTERM');
      expect(await groupGone(child.pid!, DEADLINE_MS + SLACK_MS)).toBeLessThan(DEADLINE_MS + SLACK_MS);
    } finally {
      killGroup(child.pid!, 'SIGKILL');
    }
  });

  it('an engine whose generation never ends: the deadline exits the process (code 1), logging what was pending', async () => {
    const script = path.join(REPO_ROOT, 'test', 'server', 'fixtures', 'serve-stuck-engine.mjs');
    const p = await startProcess(process.execPath, [script, ...SERVE.slice(2), '--port', '0'], { detached: true });
    try {
      const stuck = fetch(`${p.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'Hi', max_tokens: 2 }) }).catch((e: unknown) => e);
      await until('the request is on the engine', () => p.logs.find((l) => l['msg'] === 'incoming request' && l['req'] !== undefined), { timeoutMs: 30_000 });
      await new Promise((r) => setTimeout(r, 200));
      const t0 = performance.now();
      killGroup(p.child.pid!, 'SIGTERM');
      expect(await p.exit).toEqual({ code: 1, signal: null });
      const ms = performance.now() - t0;
      expect(ms).toBeGreaterThanOrEqual(DEADLINE_MS - 500);
      expect(ms).toBeLessThan(DEADLINE_MS + SLACK_MS);
      const missed = p.logs.find((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('shutdown did not finish within 6 s'));
      expect(missed?.['pending']).toMatchObject({ models: [{ name: 'synthetic:tiny', requestsRunning: 1, requestsWaiting: 0 }] });
      await stuck;
    } finally {
      killGroup(p.child.pid!, 'SIGKILL');
    }
  });

  it('10 rounds of: start via npx, a streamed and a plain request with the openai client, SIGTERM to the group: every round exits', async () => {
    const times: number[] = [];
    for (let round = 0; round < 10; round++) {
      const p = await startProcess('npx', [...SERVE, '--port', '0'], { detached: true });
      const pgid = p.child.pid!;
      try {
        const client = new OpenAI({ baseURL: `${p.url}/v1`, apiKey: 'unused', maxRetries: 0 });
        const stream = await client.chat.completions.create({ model: 'synthetic:tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3, stream: true });
        let chunks = 0;
        for await (const _ of stream) chunks++;
        expect(chunks).toBeGreaterThan(0);
        // ignore_eos: an end token drawn at random would end the answer before its 2 tokens
        const plain = await client.chat.completions.create({ model: 'synthetic:tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, ...FIXED_LENGTH });
        expect(plain.usage!.completion_tokens).toBe(2);
        killGroup(pgid, 'SIGTERM');
        times.push(await groupGone(pgid, DEADLINE_MS + SLACK_MS));
        // It stopped the way SIGTERM asks, not by the deadline.
        expect(p.logs.find((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('shutdown did not finish'))).toBeUndefined();
      } finally {
        killGroup(pgid, 'SIGKILL');
      }
    }
    expect(times).toHaveLength(10);
    for (const ms of times) expect(ms).toBeLessThan(DEADLINE_MS + SLACK_MS);
  });
});
