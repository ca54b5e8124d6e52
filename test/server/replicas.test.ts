// Two replicas sharing one Redis (a real redis-server, started here) serve one conversation
// alternately through the official `openai` client: previous_response_id and item_reference
// inputs made on one are resolved on the other, GET /v1/responses/{id} works on both, another API
// key sees none of it, and after both replicas restart (new processes' worth of state: new
// servers, new models, new store connections) the conversation goes on.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type LocalRedis } from '../../bench/local-redis.mjs';
import { RedisResponseStore } from '../../src/server/store/index.js';
import { FIXED_LENGTH, MODEL, startServer, type TestServer } from './helpers.js';

let redis: LocalRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

const keys = [
  { name: 'alice', key: 'sk-alice' },
  { name: 'bob', key: 'sk-bob' },
];

interface Replica {
  server: TestServer;
  store: RedisResponseStore;
  alice: OpenAI;
  bob: OpenAI;
  close(): Promise<void>;
}

async function replica(): Promise<Replica> {
  const store = await RedisResponseStore.open(redis.url);
  const server = await startServer({ responseStore: store, apiKeys: keys, context: 4096 });
  const client = (apiKey: string) => new OpenAI({ baseURL: server.baseURL, apiKey, maxRetries: 0, timeout: 120_000 });
  return {
    server,
    store,
    alice: client('sk-alice'),
    bob: client('sk-bob'),
    close: async () => {
      await server.close();
      await store.close();
    },
  };
}

const text = (r: OpenAI.Responses.Response) => r.output.filter((o) => o.type === 'message').flatMap((o) => (o as OpenAI.Responses.ResponseOutputMessage).content.map((c) => ('text' in c ? c.text : ''))).join('');

describe('two replicas, one Redis', () => {
  it('serve one conversation alternately, and again after both restart', async () => {
    let [a, b] = [await replica(), await replica()];
    try {
      const turn1 = await a.alice.responses.create({ model: MODEL, input: 'My name is Ada. Remember it.', max_output_tokens: 6, ...FIXED_LENGTH });
      // Turn 2 on the other replica continues turn 1: its input holds turn 1's input and output.
      const turn2 = await b.alice.responses.create({ model: MODEL, input: 'What is my name?', previous_response_id: turn1.id, max_output_tokens: 6, ...FIXED_LENGTH });
      expect(turn2.previous_response_id).toBe(turn1.id);
      expect(turn2.usage!.input_tokens).toBeGreaterThan(turn1.usage!.input_tokens + turn1.usage!.output_tokens);
      // Turn 3 back on the first, naming an item of turn 2 (made on the other replica) by reference.
      const item = turn2.output.find((o) => o.id)!;
      const turn3 = await a.alice.responses.create({
        model: MODEL,
        input: [{ type: 'item_reference', id: item.id! }, { type: 'message', role: 'user', content: 'And again?' }],
        previous_response_id: turn2.id,
        max_output_tokens: 6, ...FIXED_LENGTH,
      });
      expect(turn3.usage!.input_tokens).toBeGreaterThan(turn2.usage!.input_tokens);
      // Streamed, on the second replica.
      const stream = await b.alice.responses.create({ model: MODEL, input: 'One more, streamed.', previous_response_id: turn3.id, max_output_tokens: 6, ...FIXED_LENGTH, stream: true });
      let turn4: OpenAI.Responses.Response | null = null;
      for await (const e of stream) if (e.type === 'response.completed' || e.type === 'response.incomplete') turn4 = e.response;
      expect(turn4?.previous_response_id).toBe(turn3.id);

      // Every turn is retrievable from both replicas, whole and equal.
      for (const t of [turn1, turn2, turn3, turn4!]) {
        const fromA = await a.alice.responses.retrieve(t.id);
        const fromB = await b.alice.responses.retrieve(t.id);
        expect(fromA).toEqual(fromB);
        expect(fromA.id).toBe(t.id);
        expect(text(fromA)).toBe(text(t));
      }
      // Bob, on either replica, finds none of Alice's conversation.
      for (const r of [a, b]) {
        await expect(r.bob.responses.retrieve(turn1.id)).rejects.toMatchObject({ status: 404 });
        await expect(r.bob.responses.create({ model: MODEL, input: 'x', previous_response_id: turn2.id, max_output_tokens: 2, ...FIXED_LENGTH })).rejects.toMatchObject({ status: 400, code: 'previous_response_not_found' });
        await expect(r.bob.responses.create({ model: MODEL, input: [{ type: 'item_reference', id: item.id! }], max_output_tokens: 2, ...FIXED_LENGTH })).rejects.toMatchObject({ status: 404 });
      }

      // Both restart: nothing of either process survives but what Redis holds.
      await a.close();
      await b.close();
      [a, b] = [await replica(), await replica()];
      for (const t of [turn1, turn2, turn3, turn4!]) expect((await b.alice.responses.retrieve(t.id)).id).toBe(t.id);
      const turn5 = await b.alice.responses.create({ model: MODEL, input: 'After the restart: still there?', previous_response_id: turn4!.id, max_output_tokens: 6, ...FIXED_LENGTH });
      expect(turn5.usage!.input_tokens).toBeGreaterThan(turn4!.usage!.input_tokens);
      const turn6 = await a.alice.responses.create({
        model: MODEL,
        input: [{ type: 'item_reference', id: turn5.output.find((o) => o.id)!.id! }, { type: 'message', role: 'user', content: 'Last one.' }],
        previous_response_id: turn5.id,
        max_output_tokens: 6, ...FIXED_LENGTH,
      });
      expect((await b.alice.responses.retrieve(turn6.id)).previous_response_id).toBe(turn5.id);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
