// A lost GPU device on the real server (synthetic:tiny on lavapipe): the test hook destroys the
// engine's device mid-stream (`device.destroy()`, a real lost device, as a driver reset gives).
// Every request in flight ends with a 503 `device_lost` (streams: the error event the SDKs raise),
// /health turns 503 while the model reloads on a new device, then the server is healthy again and
// the same request gives the same tokens as before the loss. Under `--on-device-lost exit`, serve
// exits non-zero instead.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveCommand } from '../../src/server/serve-command.js';
import { modelGauges } from '../../src/server/models.js';
import { FIXED_LENGTH, MODEL, post, startServer, type TestServer } from './helpers.js';

let s: TestServer;
beforeAll(async () => {
  s = await startServer({ maxNumSeqs: 4, testHooks: true });
});
afterAll(async () => {
  await s?.close();
});

async function until(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const health = async (base: string) => {
  const r = await fetch(base.replace('/v1', '/health'));
  return { status: r.status, body: (await r.json()) as { status: string; error?: { code: string; type: string } } };
};

/** Reads a stream to its end; resolves with the error it raised (or null). */
async function drain(iter: AsyncIterator<unknown>): Promise<unknown> {
  try {
    while (!(await iter.next()).done);
    return null;
  } catch (e) {
    return e;
  }
}

const sameRequest = { model: MODEL, messages: [{ role: 'user' as const, content: 'Count to ten.' }], max_tokens: 12, seed: 7, temperature: 0.8, ...FIXED_LENGTH };
const sameCompletion = { model: MODEL, prompt: 'Once upon a time', max_tokens: 12, seed: 3, ...FIXED_LENGTH };

describe('device loss', () => {
  it('streams in flight end with device_lost, /health is 503 during the reload, then the same request gives the same tokens', async () => {
    const ctx = s.app.gptOss;
    const before = await s.client.chat.completions.create(sameRequest);
    const beforeCompletion = await s.client.completions.create(sameCompletion);
    expect(before.usage?.completion_tokens).toBe(12);
    const engineBefore = s.model.host.engine;

    // Three streams (one per API) and one plain request, all running when the device goes.
    const chat = await s.client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'A long story' }], max_tokens: 1500, stream: true, ...FIXED_LENGTH });
    const completion = await s.client.completions.create({ model: MODEL, prompt: 'A long story', max_tokens: 1500, stream: true, ...FIXED_LENGTH });
    const response = await s.client.responses.create({ model: MODEL, input: 'A long story', max_output_tokens: 1500, stream: true, ...FIXED_LENGTH });
    const iters = [chat, completion, response].map((x) => x[Symbol.asyncIterator]() as AsyncIterator<unknown>);
    // The first chunk of each: chat's role chunk and the created events come as the turn starts,
    // so read until each has produced at least one token-bearing event.
    for (const it of iters) await it.next();
    await iters[2]!.next();
    const plain = post(s.baseURL, '/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'plain' }], max_tokens: 1500, ...FIXED_LENGTH });
    await until('all four run', () => s.model.queue.running === 4);

    const hook = await post(s.baseURL.replace('/v1', ''), '/test-hooks/device-lost', {});
    expect(hook).toMatchObject({ status: 200, json: { model: MODEL, destroyed: true } });

    const errors = await Promise.all(iters.map(drain));
    for (const e of errors) {
      expect(e).toBeInstanceOf(OpenAI.APIError);
      expect(e).toMatchObject({ code: 'device_lost', type: 'server_error' });
    }
    const p = await plain;
    expect(p.status).toBe(503);
    expect(p.json).toEqual({ error: { message: expect.stringContaining('GPU device was lost'), type: 'server_error', param: null, code: 'device_lost' } });
    expect(Number(p.headers.get('retry-after'))).toBeGreaterThan(0);

    // Down while it reloads (a load takes seconds; the errors above came at once), and so is a new request.
    const during = await health(s.baseURL);
    expect(during.status).toBe(503);
    expect(during.body).toMatchObject({ status: 'recovering', error: { code: 'device_lost', type: 'server_error' } });
    expect(await post(s.baseURL, '/chat/completions', sameRequest)).toMatchObject({ status: 503, json: { error: { code: 'device_lost' } } });
    await until('healthy again', async () => (await health(s.baseURL)).status === 200);
    expect(s.model.host.losses).toBe(1);
    expect(s.model.host.reloads).toBe(1);
    expect(s.model.host.engine).not.toBe(engineBefore);
    expect(modelGauges(s.model).kvInUse).toBe(0);
    expect(s.model.queue.running).toBe(0);

    // A new device, the same weights: the same tokens for the same request and seed.
    const after = await s.client.chat.completions.create(sameRequest);
    expect(after.choices[0]!.message.content).toBe(before.choices[0]!.message.content);
    expect([after.usage?.prompt_tokens, after.usage?.completion_tokens]).toEqual([before.usage?.prompt_tokens, before.usage?.completion_tokens]);
    const afterCompletion = await s.client.completions.create(sameCompletion);
    expect(afterCompletion.choices[0]!.text).toBe(beforeCompletion.choices[0]!.text);
    const metrics = await (await fetch(s.baseURL.replace('/v1', '/metrics'))).text();
    expect(metrics).toMatch(/^gpt_oss_http_requests_total\{route="\/v1\/chat\/completions",method="POST",status="503"\} [1-9]/m);
  });

  it('the hook is only there with --test-hooks', async () => {
    const plain = await startServer({ engine: s.model.host.ready().engine, tokenizer: s.model.host.ready().tokenizer });
    try {
      const r = await post(plain.baseURL.replace('/v1', ''), '/test-hooks/device-lost', {});
      expect(r.status).toBe(404);
      expect(r.json.error.code).toBe('unknown_url');
    } finally {
      await plain.close();
    }
  });

  it('--on-device-lost exit: serve exits 1, naming the loss', async () => {
    let url = '';
    let err = '';
    const done = serveCommand(['--model', MODEL, '--port', '0', '--context', '512', '--log-level', 'silent', '--test-hooks', 'on', '--on-device-lost', 'exit'], {
      env: {},
      stderr: { write: (t: string) => (err += t) },
      onListening: (u) => (url = u),
    });
    await until('serve listens', () => url !== '', 30_000);
    await until('the model is ready', async () => (await fetch(`${url}/health`)).status === 200);
    const stream = await new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 }).chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Go on' }],
      max_tokens: 400,
      stream: true,
    });
    const iter = stream[Symbol.asyncIterator]();
    await iter.next();
    await post(url, '/test-hooks/device-lost', {});
    expect(await drain(iter)).toMatchObject({ code: 'device_lost' });
    expect(await done).toBe(1);
    expect(err).toMatch(/error: the model is gone: the GPU device was lost/);
  });
});
