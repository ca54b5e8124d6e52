// Load and faults on the real server (synthetic:tiny): a client that leaves mid-stream stops its
// generation within a decode step, one that leaves mid-prefill within a prefill chunk, a client
// that leaves while queued never reaches the engine, the queue bound answers 429 with
// Retry-After, 20 concurrent streams all finish, the API key is enforced, closing the server
// stops a running generation cleanly, and a graceful close lets requests in flight finish within
// its grace period while refusing new ones.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import type { ServingEngine } from '../../src/server/model-host.js';
import { closeGracefully } from '../../src/server/app.js';
import { FIXED_LENGTH, MODEL, post, startServer, until, type TestServer } from './helpers.js';

let s: TestServer;
let engine: ServingEngine;
beforeAll(async () => {
  // One sequence at a time, so requests wait in the server's queue (test/server/batching.test.ts
  // runs many at once), and steps of 256 tokens, so a long prompt takes several.
  s = await startServer({ maxNumSeqs: 1, maxBatchTokens: 256 });
  engine = s.model.host.engine!;
});
afterAll(async () => {
  await s?.close();
});

// Every request here runs to its max_tokens: the tests count tokens and time streams by it.
const user = (content: string) => ({ model: MODEL, messages: [{ role: 'user' as const, content }], ...FIXED_LENGTH });


/** Opens a long stream and waits for its first chunk (sent when its turn on the engine starts). */
async function longStream(client: OpenAI, maxTokens = 400, content = 'Tell a long story.') {
  const ac = new AbortController();
  const stream = await client.chat.completions.create({ ...user(content), max_tokens: maxTokens, stream: true }, { signal: ac.signal });
  const iter = stream[Symbol.asyncIterator]();
  return { ac, iter, first: iter.next() };
}

describe('cancellation', () => {
  it('a client that disconnects mid-stream stops its generation within a decode step; the next request runs', async () => {
    const ctx = s.app.gptOss;
    const { ac, first } = await longStream(s.client);
    const chunk = await first;
    expect(chunk.value?.choices[0]?.delta.role).toBe('assistant');
    expect(s.model.queue.busy).toBe(true);
    ac.abort();
    await until('the engine is idle', () => !s.model.queue.busy && !engine.isBusy, { timeoutMs: 30_000 });
    // Stopped right away, nowhere near its 400 tokens: the abort lands between decode steps.
    expect(ctx.lastGeneration).toMatchObject({ finishReason: 'abort', maxTokens: 400 });
    expect(ctx.lastGeneration!.tokens).toBeLessThanOrEqual(3);
    expect(engine.batching!().kvPagesUsed).toBe(0);
    expect(s.model.queue.queueDepth).toBe(0);
    const next = await s.client.chat.completions.create({ ...user('Hi'), max_tokens: 2 });
    expect(next.usage!.completion_tokens).toBe(2);
    const metrics = await (await fetch(s.baseURL.replace('/v1', '/metrics'))).text();
    expect(metrics).toMatch(/^gpt_oss_generations_total\{reason="abort"\} [1-9]/m);
    expect(metrics).toMatch(/^gpt_oss_http_requests_total\{route="\/v1\/chat\/completions",method="POST",status="499"\} [1-9]/m);
  });

  it('a client that disconnects mid-prefill stops it within two prefill chunks', async () => {
    const ctx = s.app.gptOss;
    // The engine's prefill chunk (tokens per step); about 1900 prompt tokens fill several.
    const chunk = (engine as unknown as { memoryPlan: { chunk: number } }).memoryPlan.chunk;
    const full = await s.client.chat.completions.create({ ...user(' hello'.repeat(1850)), max_tokens: 1 });
    const chunks = Math.ceil(full.usage!.prompt_tokens / chunk);
    expect(chunks).toBeGreaterThanOrEqual(4);
    const chunkMs = ctx.lastGeneration!.prefillMs / chunks;
    // The role chunk goes out as prefill starts; the abort then lands in its first chunks. (Other
    // words than above: a cached prefix would skip most of the prefill.) Counted in engine steps,
    // not milliseconds, so a loaded machine cannot change the verdict.
    // the engine behind the server's ServingEngine view counts its steps
    const steps = () => (engine as unknown as { stats: { steps: number } }).stats.steps;
    const stepsBefore = steps();
    const { ac, first } = await longStream(s.client, 1, ' world'.repeat(1850));
    await first;
    await new Promise((r) => setTimeout(r, 0.5 * chunkMs));
    const stepsAtAbort = steps();
    ac.abort();
    await until('the engine is idle', () => !s.model.queue.busy && !engine.isBusy, { timeoutMs: 60_000 });
    const after = steps() - stepsAtAbort;
    const what = `${after} steps after the abort, ${steps() - stepsBefore} in all; ${chunks} chunks of ${chunk} tokens`;
    expect(ctx.lastGeneration, what).toMatchObject({ finishReason: 'abort', tokens: 0 });
    // 'abort' with no token means the prefill never finished. Without a bound on the work in
    // flight it all ran first: the step in flight and the one planned ahead of it may finish, no more.
    expect(after, what).toBeLessThanOrEqual(2);
  });

  it('a queued request whose client disconnected is dropped before it reaches the engine', async () => {
    const ctx = s.app.gptOss;
    const turnsBefore = ctx.metrics.queueTime.observations;
    const running = await longStream(s.client);
    await running.first;
    const ac = new AbortController();
    const queued = s.client.chat.completions.create({ ...user('Queued'), max_tokens: 2 }, { signal: ac.signal }).catch((e: unknown) => e);
    const queuedStream = await longStream(s.client, 3);
    await until('two requests wait', () => s.model.queue.queueDepth === 2);
    ac.abort();
    queuedStream.ac.abort();
    expect(await queued).toBeInstanceOf(OpenAI.APIUserAbortError);
    await until('both left the queue', () => s.model.queue.queueDepth === 0);
    running.ac.abort();
    await until('the engine is idle', () => !s.model.queue.busy, { timeoutMs: 30_000 });
    // Only the running request took a turn.
    expect(ctx.metrics.queueTime.observations).toBe(turnsBefore + 1);
  });
});

describe('queue bound', () => {
  it('beyond --max-queue a request gets 429 with Retry-After, in the OpenAI error shape', async () => {
    const small = await startServer({ engine, tokenizer: s.model.host.ready().tokenizer, maxQueue: 1 });
    try {
      const running = await longStream(small.client);
      await running.first;
      const waiting = await longStream(small.client, 2);
      await until('one waits', () => small.model.queue.queueDepth === 1);
      const r = await post(small.baseURL, '/chat/completions', { ...user('One too many'), max_tokens: 2 });
      expect(r.status).toBe(429);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(r.json).toEqual({ error: { message: expect.any(String), type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } });
      const streamed = await post(small.baseURL, '/chat/completions', { ...user('One too many'), max_tokens: 2, stream: true });
      expect(streamed.status).toBe(429);
      await expect(small.client.chat.completions.create({ ...user('x'), max_tokens: 1 })).rejects.toBeInstanceOf(OpenAI.RateLimitError);
      waiting.ac.abort();
      running.ac.abort();
      await until('the engine is idle', () => !small.model.queue.busy && small.model.queue.queueDepth === 0, { timeoutMs: 30_000 });
      expect((await small.client.chat.completions.create({ ...user('Now there is room'), max_tokens: 1 })).usage!.completion_tokens).toBe(1);
    } finally {
      await small.close();
    }
    // The engine was lent, not owned: it still works.
    expect(engine.isBusy).toBe(false);
  });
});

describe('concurrency', () => {
  it('20 concurrent streams all complete, in turn', async () => {
    const ctx = s.app.gptOss;
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const stream = await s.client.chat.completions.create({ ...user(`Request ${i}`), max_tokens: 2, seed: i, stream: true, stream_options: { include_usage: true } });
        let finish: string | null = null;
        let usage: OpenAI.CompletionUsage | undefined;
        for await (const c of stream) {
          finish = c.choices[0]?.finish_reason ?? finish;
          usage = c.usage ?? usage;
        }
        return { finish, usage };
      }),
    );
    for (const r of results) {
      expect(r.finish).toBe('length');
      expect(r.usage?.completion_tokens).toBe(2);
    }
    expect(s.model.queue.queueDepth).toBe(0);
    expect(s.model.queue.busy).toBe(false);
  });
});

describe('auth', () => {
  it('with --api-key every route but /health needs the bearer key; without one, none does', async () => {
    const locked = await startServer({ engine, tokenizer: s.model.host.ready().tokenizer, apiKey: 'sk-test-123' });
    try {
      const health = await fetch(locked.baseURL.replace('/v1', '/health'));
      expect(health.status).toBe(200);
      for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'Basic sk-test-123' }, { authorization: 'Bearer' }]) {
        const r = await post(locked.baseURL, '/chat/completions', { ...user('x'), max_tokens: 1 }, headers as Record<string, string>);
        expect(r.status).toBe(401);
        expect(r.json.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_api_key', param: null, message: expect.any(String) });
      }
      const metrics = await fetch(locked.baseURL.replace('/v1', '/metrics'));
      expect(metrics.status).toBe(401);
      const wrong = new OpenAI({ baseURL: locked.baseURL, apiKey: 'sk-wrong', maxRetries: 0 });
      await expect(wrong.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      const models = await locked.client.models.list();
      expect(models.data[0]!.id).toBe(MODEL);
      expect((await locked.client.chat.completions.create({ ...user('x'), max_tokens: 1 })).usage!.completion_tokens).toBe(1);
    } finally {
      await locked.close();
    }
    // The open server takes requests with no Authorization header at all.
    const open = await post(s.baseURL, '/chat/completions', { ...user('x'), max_tokens: 1 });
    expect(open.status).toBe(200);
  });
});

describe('shutdown', () => {
  it('closing the server ends a running stream and a queued request, and leaves the engine idle', async () => {
    const other = await startServer({ engine, tokenizer: s.model.host.ready().tokenizer });
    const running = await longStream(other.client);
    await running.first;
    const queued = post(other.baseURL, '/chat/completions', { ...user('queued'), max_tokens: 2 });
    await until('one waits', () => other.model.queue.queueDepth === 1);
    await other.close();
    expect((await queued).status).toBe(503);
    // The stream ends (the client sees the end of the body, or a connection error).
    await Promise.race([
      (async () => {
        try {
          while (!(await running.iter.next()).done);
        } catch {
          // a cut connection is fine too
        }
      })(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('the stream did not end')), 30_000)),
    ]);
    expect(engine.isBusy).toBe(false);
    expect(other.app.gptOss.lastGeneration?.finishReason).toBe('abort');
  });
  it('a graceful close answers 503 at once to /health and new requests, and lets a running request finish', async () => {
    const other = await startServer({ engine, tokenizer: s.model.host.ready().tokenizer });
    const stream = await other.client.chat.completions.create({ ...user('Short one'), max_tokens: 6, stream: true });
    const iter = stream[Symbol.asyncIterator]();
    await iter.next();
    // An hour of grace: that the close returns at all shows it waited only for the request.
    const closed = closeGracefully(other.app, 3_600_000);
    const health = await fetch(other.baseURL.replace('/v1', '/health'));
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'shutting_down', error: { type: 'server_error', code: 'shutting_down' } });
    const refused = await post(other.baseURL, '/chat/completions', { ...user('Too late'), max_tokens: 1 });
    expect(refused.status).toBe(503);
    expect(refused.json).toEqual({ error: { message: expect.any(String), type: 'server_error', param: null, code: 'shutting_down' } });
    let finish: string | null = null;
    for (let c = await iter.next(); !c.done; c = await iter.next()) finish = c.value.choices[0]?.finish_reason ?? finish;
    expect(finish).toBe('length');
    await closed;
    expect(other.app.gptOss.lastGeneration).toMatchObject({ finishReason: 'length', tokens: 6 });
    expect(engine.isBusy).toBe(false);
  });

  it('a request that outlasts the grace period is stopped: its stream ends with the shutting_down error event', async () => {
    const other = await startServer({ engine, tokenizer: s.model.host.ready().tokenizer });
    const running = await longStream(other.client);
    await running.first;
    const closed = closeGracefully(other.app, 300);
    const err = await (async () => {
      try {
        while (!(await running.iter.next()).done);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err).toMatchObject({ code: 'shutting_down', type: 'server_error' });
    await closed;
    expect(other.app.gptOss.lastGeneration).toMatchObject({ finishReason: 'abort' });
    expect(other.app.gptOss.lastGeneration!.tokens).toBeLessThan(400);
    expect(engine.isBusy).toBe(false);
  });
});
