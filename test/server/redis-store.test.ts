// The Redis Responses store against a real redis-server (started and stopped here, loopback, a
// temporary folder): responses and items under the key prefix with the TTL, the byte limit,
// per-key ownership (in both stores), a Redis that cannot be reached at start (serve refuses to
// start, naming the URL), and one that goes away later (503 store_unavailable for what needs it,
// generation without the store keeps working, and the client reconnects by itself).
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRedis, type LocalRedis } from '../../bench/local-redis.mjs';
import { serveCommand } from '../../src/server/serve-command.js';
import { MemoryResponseStore, RedisResponseStore, StoreUnavailableError, type ResponseStore, type StoredResponse } from '../../src/server/store/index.js';
import { MODEL, post, startServer, type TestServer } from './helpers.js';

let redis: LocalRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

async function until(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const entry = (id: string, input: unknown[], output: unknown[]): StoredResponse => ({ id, input, output, response: { id, object: 'response' } });
const question = { type: 'message', id: 'msg_q', role: 'user', content: 'Hi' };
const call = { type: 'function_call', id: 'fc_1', call_id: 'call_1', name: 'f', arguments: '{}' };

describe('both stores', () => {
  const stores: Array<[string, () => Promise<ResponseStore>]> = [
    ['memory', async () => new MemoryResponseStore()],
    ['redis', () => RedisResponseStore.open(redis.url, { keyPrefix: `test:${Math.random().toString(36).slice(2)}:` })],
  ];
  for (const [kind, open] of stores) {
    it(`${kind}: finds responses and items by id, only for the key that stored them; skips one over the byte limit`, async () => {
      const store = await open();
      try {
        await store.put('alice', entry('resp_1', [question], [call]));
        expect(await store.get('alice', 'resp_1')).toEqual(entry('resp_1', [question], [call]));
        expect(await store.item('alice', 'msg_q')).toEqual(question);
        expect(await store.item('alice', 'fc_1')).toEqual(call);
        // Another key's id is not there at all.
        expect(await store.get('bob', 'resp_1')).toBeUndefined();
        expect(await store.item('bob', 'fc_1')).toBeUndefined();
        expect(await store.item('alice', 'fc_2')).toBeUndefined();
        // Bob may use the same ids: separate entries.
        await store.put('bob', entry('resp_1', [{ ...question, content: 'Bob here' }], []));
        expect(((await store.get('bob', 'resp_1'))!.input[0] as { content: string }).content).toBe('Bob here');
        expect(((await store.get('alice', 'resp_1'))!.input[0] as { content: string }).content).toBe('Hi');
        await store.check();
      } finally {
        await store.close();
      }
    });
  }

  it('the byte limit: a response larger than it is not stored (memory and Redis alike)', async () => {
    const big = entry('resp_big', [{ type: 'message', role: 'user', content: 'x'.repeat(5000) }], []);
    const memory = new MemoryResponseStore({ maxBytes: 1000 });
    const r = await RedisResponseStore.open(redis.url, { maxBytes: 1000, keyPrefix: 'test:limit:' });
    try {
      for (const store of [memory, r]) {
        await store.put('k', big);
        expect(await store.get('k', 'resp_big'), store.kind).toBeUndefined();
        await store.put('k', entry('resp_small', [question], []));
        expect(await store.get('k', 'resp_small'), store.kind).toBeDefined();
      }
    } finally {
      await r.close();
    }
  });
});

describe('Redis store', () => {
  it('keys live under the prefix, one per response and per item, with the owner in each, and expire after the TTL', async () => {
    const store = await RedisResponseStore.open(redis.url, { keyPrefix: 'ttl-test:', ttlSeconds: 3600 });
    const raw = new Redis(redis.url);
    try {
      await store.put('team a', entry('resp_t', [question], [call]));
      const keys = (await raw.keys('ttl-test:*')).sort();
      expect(keys).toEqual(['ttl-test:i:team%20a:fc_1', 'ttl-test:i:team%20a:msg_q', 'ttl-test:r:team%20a:resp_t']);
      for (const k of keys) {
        const ttl = await raw.ttl(k);
        expect(ttl, k).toBeGreaterThan(3500);
        expect(ttl, k).toBeLessThanOrEqual(3600);
      }
      // A 1-second TTL really expires.
      const short = await RedisResponseStore.open(redis.url, { keyPrefix: 'ttl-short:', ttlSeconds: 1 });
      await short.put('k', entry('resp_s', [question], []));
      expect(await short.get('k', 'resp_s')).toBeDefined();
      await until('the entry expired', async () => (await short.get('k', 'resp_s')) === undefined, 10_000);
      expect(await short.item('k', 'msg_q')).toBeUndefined();
      await short.close();
    } finally {
      raw.disconnect();
      await store.close();
    }
  });

  it('unreachable at start: open() and `serve` refuse, naming the URL', async () => {
    const dead = `redis://127.0.0.1:${await freePort()}/0`;
    await expect(RedisResponseStore.open(dead)).rejects.toThrow(`cannot reach the Responses store at ${dead}`);
    const secret = dead.replace('//', '//user:hunter2@');
    await expect(RedisResponseStore.open(secret)).rejects.toThrow(/user:\*\*\*@127\.0\.0\.1/);
    let err = '';
    const code = await serveCommand(['--model', MODEL, '--port', '0', '--log-level', 'silent', '--response-store', dead], {
      env: {},
      stderr: { write: (t: string) => (err += t) },
    });
    expect(code).toBe(1);
    expect(err).toContain(`error: cannot reach the Responses store at ${dead}`);
    // From the environment too, and a bad value is a usage error.
    err = '';
    expect(await serveCommand(['--port', '0'], { env: { GPT_OSS_RESPONSE_STORE: dead, GPT_OSS_MODEL: MODEL }, stderr: { write: (t: string) => (err += t) } })).toBe(1);
    expect(err).toContain(dead);
    expect(await serveCommand(['--response-store', 'postgres://x'], { env: {}, stderr: { write: () => true } })).toBe(2);
    expect(await serveCommand(['--response-ttl', '3 weeks'], { env: {}, stderr: { write: () => true } })).toBe(2);
  });

  it('goes away while serving: what needs the store gets 503 store_unavailable, the rest keeps generating; it reconnects by itself', async () => {
    const store = await RedisResponseStore.open(redis.url, { keyPrefix: 'outage:' });
    const s = await startServer({ responseStore: store, apiKeys: [{ name: 'a', key: 'sk-a' }, { name: 'b', key: 'sk-b' }] });
    const b = new OpenAI({ baseURL: s.baseURL, apiKey: 'sk-b', maxRetries: 0 });
    const a = new OpenAI({ baseURL: s.baseURL, apiKey: 'sk-a', maxRetries: 0 });
    try {
      const first = await a.responses.create({ model: MODEL, input: 'Hello', max_output_tokens: 3 });
      expect((await a.responses.retrieve(first.id)).id).toBe(first.id);
      // Key b: a 404 for a's response, and it cannot continue it.
      await expect(b.responses.retrieve(first.id)).rejects.toMatchObject({ status: 404, code: 'not_found' });
      await expect(b.responses.create({ model: MODEL, input: 'More', previous_response_id: first.id, max_output_tokens: 2 })).rejects.toMatchObject({
        status: 400,
        code: 'previous_response_not_found',
      });
      const itemId = first.output[0]!.id!;
      await expect(b.responses.create({ model: MODEL, input: [{ type: 'item_reference', id: itemId }], max_output_tokens: 2 })).rejects.toMatchObject({ status: 404 });

      await redis.pause();
      await until('the store notices', async () => (await store.check().then(() => false, (e: unknown) => e instanceof StoreUnavailableError)));
      const auth = { authorization: 'Bearer sk-a' };
      for (const body of [
        { model: MODEL, input: 'Stored by default', max_output_tokens: 2 },
        { model: MODEL, input: 'Streamed', max_output_tokens: 2, stream: true },
        { model: MODEL, input: 'Continue', previous_response_id: first.id, store: false, max_output_tokens: 2 },
      ]) {
        const r = await post(s.baseURL, '/responses', body, auth);
        expect(r.status, JSON.stringify(body)).toBe(503);
        expect(r.json).toEqual({ error: { message: expect.stringContaining('Responses store is unavailable'), type: 'server_error', param: null, code: 'store_unavailable' } });
        expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
      const get = await fetch(`${s.baseURL}/responses/${first.id}`, { headers: auth });
      expect(get.status).toBe(503);
      // Generation that needs no store goes on.
      const unstored = await a.responses.create({ model: MODEL, input: 'Not stored', store: false, max_output_tokens: 2 });
      expect(unstored.usage?.output_tokens).toBeGreaterThan(0);
      expect((await a.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 })).usage?.completion_tokens).toBe(2);
      expect((await a.completions.create({ model: MODEL, prompt: 'hi', max_tokens: 2 })).usage?.completion_tokens).toBe(2);
      expect((await fetch(s.baseURL.replace('/v1', '/health'))).status).toBe(200);

      // Back on the same port: no restart of the server, the client reconnects.
      await redis.restart();
      await until('the store is back', async () => store.check().then(() => true, () => false), 30_000);
      const again = await a.responses.create({ model: MODEL, input: 'Back', max_output_tokens: 2 });
      expect((await a.responses.retrieve(again.id)).id).toBe(again.id);
      // The outage dropped what Redis held (no persistence here): the old id is a clean 404 now.
      await expect(a.responses.retrieve(first.id)).rejects.toMatchObject({ status: 404 });
    } finally {
      await s.close();
      await store.close();
    }
  });
});
