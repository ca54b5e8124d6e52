// One replica of the soak (bench/soak.mjs): a `serve` process on loopback, started, probed,
// stopped with SIGTERM as an orchestrator stops a pod, and measured (RSS, /metrics).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Bound of waiting for a replica to load. */
export const READY_TIMEOUT_MS = 600_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Replica {
  /** `serve` of `opts.model` on 127.0.0.1:`port`, with the Redis store and the test hooks. */
  constructor(name, port, redisUrl, opts) {
    this.opts = opts;
    this.name = name;
    this.port = port;
    this.redisUrl = redisUrl;
    this.url = `http://127.0.0.1:${port}`;
    this.child = null;
    /** Takes traffic: listening and healthy, not draining. */
    this.up = false;
    this.starts = 0;
    this.exits = [];
    this.baselineRss = null;
    this.baselines = [];
    this.rebaseline = false;
  }

  start() {
    const argv = [path.join(ROOT, 'bin', 'gpt-oss-webgpu.js'), 'serve', '--model', this.opts.model, '--host', '127.0.0.1', '--port', String(this.port),
      '--context', String(this.opts.context), '--max-num-seqs', String(this.opts.maxNumSeqs), '--response-store', this.redisUrl, '--test-hooks', 'on',
      '--shutdown-grace-seconds', '5', '--log-level', 'warn'];
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
    this.child = child;
    this.starts++;
    this.stderrTail = '';
    child.stderr.on('data', (d) => (this.stderrTail = (this.stderrTail + d).slice(-4000)));
    child.once('exit', (code, signal) => {
      this.exits.push({ code, signal });
      if (this.child === child) {
        this.child = null;
        this.up = false;
      }
    });
  }

  get pid() {
    return this.child?.pid ?? null;
  }

  async waitHealthy(timeoutMs = READY_TIMEOUT_MS) {
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      if (!this.child) throw new Error(`${this.name} exited: ${JSON.stringify(this.exits.at(-1))}\n${this.stderrTail}`);
      try {
        const r = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(5000) });
        if (r.status === 200) {
          this.up = true;
          return Date.now() - t0;
        }
      } catch {
        // not listening yet
      }
      await sleep(250);
    }
    throw new Error(`${this.name} not healthy after ${timeoutMs} ms\n${this.stderrTail}`);
  }

  /** SIGTERM, as an orchestrator stops a pod; resolves with the exit. */
  async stop() {
    this.up = false;
    const child = this.child;
    if (!child) return null;
    const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const e = await exited;
    clearTimeout(timer);
    return e;
  }

  rss() {
    if (!this.pid) return null;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : null;
    } catch {
      return null;
    }
  }

  async metrics() {
    const text = await (await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    const num = (name) => {
      const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
      return m ? Number(m[1]) : null;
    };
    return { kvPagesUsed: num('gpt_oss_kv_pages_used'), running: num('gpt_oss_requests_running'), queue: num('gpt_oss_queue_depth'), kvPositions: num('gpt_oss_kv_cache_positions_in_use') };
  }

  /** Waits until nothing runs or waits (bounded). */
  async idle(timeoutMs = 120_000) {
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      try {
        const h = await (await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(5000) })).json();
        if (h.status === 'ok' && h.queue_depth === 0 && h.running === 0) return true;
      } catch {
        // not reachable right now
      }
      await sleep(200);
    }
    return false;
  }
}
