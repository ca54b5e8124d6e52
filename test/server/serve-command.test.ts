// `serve`: flags and their environment variables, the server listening before the model is
// loaded (/health 503, then 200), a clean stop on SIGTERM, a clear message when a hub model
// cannot be had offline, and as real processes: SIGTERM during a prefill (graceful, bounded,
// exit code 0), and `npx gpt-oss-webgpu serve` stopping when npx is killed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { parseServeArgs, serveCommand, ServeUsageError } from '../../src/server/serve-command.js';
import { REPO_ROOT, until } from './helpers.js';
import { alive, startProcess } from './processes.js';

function capture() {
  let text = '';
  return { write: (s: string) => (text += s), get text() { return text; } };
}

describe('serve flags', () => {
  it('defaults, environment variables, and flags over both', () => {
    const defaults = { maxTokensDefault: 4096, shutdownGraceSeconds: 30, ui: true };
    expect(parseServeArgs([], {})).toEqual({ help: false, models: [{ spec: 'openai/gpt-oss-20b' }], host: '127.0.0.1', port: 8000, maxQueue: 64, logLevel: 'info', ...defaults });
    const env = {
      GPT_OSS_MODEL: 'synthetic:tiny',
      GPT_OSS_HOST: '0.0.0.0',
      GPT_OSS_PORT: '9000',
      GPT_OSS_API_KEY: 'sk-env',
      GPT_OSS_CONTEXT: '4096',
      GPT_OSS_MAX_QUEUE: '3',
      GPT_OSS_SERVED_MODEL_NAME: 'gpt-oss-20b',
      GPT_OSS_LOG_LEVEL: 'warn',
      GPT_OSS_MAX_TOKENS_DEFAULT: '1000',
      GPT_OSS_MAX_PROMPT_TOKENS: '3000',
      GPT_OSS_SHUTDOWN_GRACE_SECONDS: '12.5',
    };
    expect(parseServeArgs([], env)).toEqual({
      help: false, models: [{ spec: 'synthetic:tiny' }], host: '0.0.0.0', port: 9000, apiKey: 'sk-env', context: 4096, maxQueue: 3, servedModelName: 'gpt-oss-20b', logLevel: 'warn',
      maxTokensDefault: 1000, maxPromptTokens: 3000, shutdownGraceSeconds: 12.5, ui: true,
    });
    expect(parseServeArgs([], { ...env, GPT_OSS_NO_UI: '1' }).ui).toBe(false);
    expect(parseServeArgs(['--no-ui'], {}).ui).toBe(false);
    const flags = [
      '--model', '/models/x', '--host', '::1', '--port', '0', '--api-key', 'sk-flag', '--context', '512', '--max-queue', '0', '--served-model-name', 'x', '--log-level', 'debug',
      '--max-tokens-default', '64', '--max-prompt-tokens', '100', '--shutdown-grace-seconds', '0',
    ];
    expect(parseServeArgs(flags, env)).toEqual({
      help: false, models: [{ spec: '/models/x' }], host: '::1', port: 0, apiKey: 'sk-flag', context: 512, maxQueue: 0, servedModelName: 'x', logLevel: 'debug',
      maxTokensDefault: 64, maxPromptTokens: 100, shutdownGraceSeconds: 0, ui: true,
    });
  });

  it('bad values are usage errors (exit code 2 with the usage)', async () => {
    for (const argv of [
      ['--port', 'eighty'], ['--port', '70000'], ['--context', '0'], ['--max-queue', '-1'], ['--log-level', 'loud'], ['--bogus'], ['positional'],
      ['--max-tokens-default', '0'], ['--max-prompt-tokens', '1.5'], ['--shutdown-grace-seconds', '-1'], ['--shutdown-grace-seconds', 'soon'],
    ]) {
      expect(() => parseServeArgs(argv, {})).toThrow(ServeUsageError);
    }
    expect(() => parseServeArgs([], { GPT_OSS_PORT: 'x' })).toThrow(/--port/);
    const stderr = capture();
    expect(await serveCommand(['--port', 'x'], { stderr, env: {} })).toBe(2);
    expect(stderr.text).toContain('--port');
    expect(stderr.text).toContain('Usage: gpt-oss-webgpu serve');
    const stdout = capture();
    expect(await serveCommand(['--help'], { stdout, env: {} })).toBe(0);
    expect(stdout.text).toContain('GPT_OSS_MAX_QUEUE');
  });
});

describe('serve', () => {
  it('listens at once, answers 503 until the model is loaded, serves, and stops cleanly on SIGTERM', async () => {
    const sigterm = process.listenerCount('SIGTERM');
    const sigint = process.listenerCount('SIGINT');
    let url = '';
    const healthCodes: number[] = [];
    const stderr = capture();
    const done = serveCommand(['--model', 'synthetic:tiny', '--port', '0', '--context', '512', '--log-level', 'silent', '--api-key', 'sk-1'], {
      env: {},
      stderr,
      onListening: (u) => (url = u),
    });
    const t0 = Date.now();
    while (url === '') {
      if (Date.now() - t0 > 30_000) throw new Error('serve did not listen');
      await new Promise((r) => setTimeout(r, 5));
    }
    for (;;) {
      const r = await fetch(`${url}/health`);
      healthCodes.push(r.status);
      if (r.status === 200) break;
      expect(r.status).toBe(503);
      expect(((await r.json()) as { status: string }).status).toBe('loading');
      if (Date.now() - t0 > 120_000) throw new Error('the model did not load');
      await new Promise((r) => setTimeout(r, 50));
    }
    // It listened before the model was ready.
    expect(healthCodes[0]).toBe(503);
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-1', maxRetries: 0 });
    const r = await client.chat.completions.create({ model: 'synthetic:tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1 });
    expect(r.usage!.completion_tokens).toBe(1);

    // The handler serve installed is the newest SIGTERM listener; calling it is what the signal does.
    expect(process.listenerCount('SIGTERM')).toBe(sigterm + 1);
    (process.listeners('SIGTERM').at(-1) as () => void)();
    expect(await done).toBe(0);
    expect(process.listenerCount('SIGTERM')).toBe(sigterm);
    expect(process.listenerCount('SIGINT')).toBe(sigint);
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });

  it('a hub id that cannot be downloaded exits 1 and says how to pass a local folder', async () => {
    const cache = await mkdtemp(path.join(tmpdir(), 'gpt-oss-serve-'));
    const saved = { offline: process.env['HF_HUB_OFFLINE'], cache: process.env['HF_HUB_CACHE'] };
    process.env['HF_HUB_OFFLINE'] = '1';
    process.env['HF_HUB_CACHE'] = cache;
    try {
      const stderr = capture();
      const code = await serveCommand(['--model', 'openai/gpt-oss-20b', '--port', '0', '--log-level', 'silent'], { env: {}, stderr });
      expect(code).toBe(1);
      expect(stderr.text).toContain('could not be loaded');
      expect(stderr.text).toContain('--model /path/to/folder');
    } finally {
      for (const [k, v] of [['HF_HUB_OFFLINE', saved.offline], ['HF_HUB_CACHE', saved.cache]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await rm(cache, { recursive: true, force: true });
    }
  });
});

describe('serve as a process', () => {
  it('SIGTERM during a prefill: /health and new requests get 503 at once, the stream ends with shutting_down after the grace, exit code 0', async () => {
    const bin = path.join(REPO_ROOT, 'bin', 'gpt-oss-webgpu.js');
    const p = await startProcess(process.execPath, [
      bin, 'serve', '--model', 'synthetic:tiny', '--port', '0', '--context', '4096', '--shutdown-grace-seconds', '0.2', '--log-level', 'info',
      // steps of 256 tokens: the prompt below takes sixteen, and the stop (within two of them)
      // stays well inside the shutdown deadline (grace + 5 s) even on a loaded CPU
      '--max-batch-tokens', '256',
    ]);
    try {
      const client = new OpenAI({ baseURL: `${p.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      // About 3900 prompt tokens. The whole prefill of such a prompt, from the server's log: what
      // SIGTERM must not wait for. (The prompt cut below has other words: a cached prefix would
      // skip most of its prefill.)
      const prompt = (word: string) => [{ role: 'user' as const, content: word.repeat(3850) }];
      await client.chat.completions.create({ model: 'synthetic:tiny', messages: prompt(' hello'), max_tokens: 1 });
      const prefillMs = Number(p.logs.find((l) => l['msg'] === 'generation finished')!['prefillMs']);
      const stream = await client.chat.completions.create({ model: 'synthetic:tiny', messages: prompt(' world'), max_tokens: 1, stream: true });
      const iter = stream[Symbol.asyncIterator]();
      await iter.next(); // the role chunk: prefill has started
      const t0 = performance.now();
      p.child.kill('SIGTERM');
      // Once the server has seen the signal (its log says so), and while the prefill still runs:
      await until('the server logs the signal', () => p.logs.find((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('shutting down (SIGTERM)')));
      const health = await fetch(`${p.url}/health`);
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ status: 'shutting_down' });
      const refused = await fetch(`${p.url}/v1/models`);
      expect(refused.status).toBe(503);
      expect(await refused.json()).toEqual({ error: { message: expect.any(String), type: 'server_error', param: null, code: 'shutting_down' } });
      const err = await (async () => {
        try {
          while (!(await iter.next()).done);
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(err).toMatchObject({ code: 'shutting_down' });
      expect(await p.exit).toEqual({ code: 0, signal: null });
      const exitMs = performance.now() - t0;
      // Bounded: the grace (0.2 s), then at most two chunks and the close, well short of the
      // prefill it cut (about a sixth of it here; without the bound it waited for all of it).
      expect(exitMs, `exit ${exitMs.toFixed(0)} ms after SIGTERM; the whole prefill takes ${prefillMs.toFixed(0)} ms`).toBeLessThan(0.6 * prefillMs);
      expect(p.logs.find((l) => l['msg'] === 'generation finished' && l['finish'] === 'abort')).toBeDefined();
    } finally {
      if (alive(p.pid)) process.kill(p.pid, 'SIGKILL');
    }
  });

  it('`npx gpt-oss-webgpu serve`: killing npx stops the server', async () => {
    const p = await startProcess('npx', ['gpt-oss-webgpu', 'serve', '--model', 'synthetic:tiny', '--port', '0', '--context', '256', '--log-level', 'info']);
    try {
      // npx runs node below npm and a shell: the server is not npx's own process.
      expect(p.pid).not.toBe(p.child.pid);
      expect((await fetch(`${p.url}/health`)).status).toBe(200);
      p.child.kill('SIGTERM');
      await p.exit;
      for (let t0 = Date.now(); alive(p.pid); ) {
        if (Date.now() - t0 > 60_000) throw new Error('the server outlived npx');
        await new Promise((r) => setTimeout(r, 50));
      }
      await expect(fetch(`${p.url}/health`)).rejects.toThrow();
      expect(p.logs.find((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('shutting down (npm'))).toBeDefined();
    } finally {
      if (alive(p.pid)) process.kill(p.pid, 'SIGKILL');
    }
  });
});
