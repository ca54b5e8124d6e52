// `serve`: flags and their environment variables, the server listening before the model is
// loaded (/health 503, then 200), a clean stop on SIGTERM, and a clear message when a hub model
// cannot be had offline.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { parseServeArgs, serveCommand, ServeUsageError } from '../../src/server/serve-command.js';

function capture() {
  let text = '';
  return { write: (s: string) => (text += s), get text() { return text; } };
}

describe('serve flags', () => {
  it('defaults, environment variables, and flags over both', () => {
    expect(parseServeArgs([], {})).toEqual({ help: false, model: 'openai/gpt-oss-20b', host: '127.0.0.1', port: 8000, maxQueue: 64, logLevel: 'info' });
    const env = {
      GPT_OSS_MODEL: 'synthetic:tiny',
      GPT_OSS_HOST: '0.0.0.0',
      GPT_OSS_PORT: '9000',
      GPT_OSS_API_KEY: 'sk-env',
      GPT_OSS_CONTEXT: '4096',
      GPT_OSS_MAX_QUEUE: '3',
      GPT_OSS_SERVED_MODEL_NAME: 'gpt-oss-20b',
      GPT_OSS_LOG_LEVEL: 'warn',
    };
    expect(parseServeArgs([], env)).toEqual({
      help: false, model: 'synthetic:tiny', host: '0.0.0.0', port: 9000, apiKey: 'sk-env', context: 4096, maxQueue: 3, servedModelName: 'gpt-oss-20b', logLevel: 'warn',
    });
    const flags = ['--model', '/models/x', '--host', '::1', '--port', '0', '--api-key', 'sk-flag', '--context', '512', '--max-queue', '0', '--served-model-name', 'x', '--log-level', 'debug'];
    expect(parseServeArgs(flags, env)).toEqual({
      help: false, model: '/models/x', host: '::1', port: 0, apiKey: 'sk-flag', context: 512, maxQueue: 0, servedModelName: 'x', logLevel: 'debug',
    });
  });

  it('bad values are usage errors (exit code 2 with the usage)', async () => {
    for (const argv of [['--port', 'eighty'], ['--port', '70000'], ['--context', '0'], ['--max-queue', '-1'], ['--log-level', 'loud'], ['--bogus'], ['positional']]) {
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
