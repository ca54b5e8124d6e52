// Continuous batching through the server, as clients see it: 32 streaming chats at once through
// the official `openai` client all complete, each with exactly the text it gets when it runs
// alone with the same seed (checked for a quarter of them); the engine ran them in shared steps
// (/metrics' batch sizes); a request that repeats an earlier one's prompt reports its cached
// prompt tokens.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL, startServer, type TestServer } from './helpers.js';

let s: TestServer;
beforeAll(async () => {
  s = await startServer({ maxNumSeqs: 32, maxBatchTokens: 2048 });
});
afterAll(async () => {
  await s?.close();
});

async function chat(i: number): Promise<string> {
  const stream = await s.client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: `Request number ${i}: say something about the number ${i * 7}.` }],
    max_tokens: 12,
    temperature: 0.8,
    seed: 1000 + i,
    stream: true,
  });
  let text = '';
  for await (const chunk of stream) {
    const d = chunk.choices[0]?.delta as { content?: string; reasoning?: string } | undefined;
    text += (d?.reasoning ?? '') + '|' + (d?.content ?? '');
  }
  return text;
}

describe('continuous batching in the server', () => {
  it('32 concurrent streaming chats complete with the text each gets alone', async () => {
    const n = 32;
    const together = await Promise.all(Array.from({ length: n }, (_, i) => chat(i)));
    const metrics = await (await fetch(s.baseURL.replace('/v1', '/metrics'))).text();
    // steps held many sequences: some step had more than 16
    const big = /^gpt_oss_batch_size_bucket\{le="16"\} (\d+)$/m.exec(metrics);
    const count = /^gpt_oss_batch_size_count (\d+)$/m.exec(metrics);
    expect(Number(count![1])).toBeGreaterThan(Number(big![1]));
    // every fourth one again, alone (test/engine/batching.test.ts compares every sequence)
    for (let i = 0; i < n; i += 4) expect(together[i], `request ${i}`).toBe(await chat(i));
    expect(new Set(together).size).toBeGreaterThan(n / 2);
  });

  it('a repeated prompt reports the tokens the prefix cache served', async () => {
    const body = { model: MODEL, messages: [{ role: 'user' as const, content: 'A long shared question. '.repeat(40) }], max_tokens: 2 };
    const first = await s.client.chat.completions.create(body);
    const second = await s.client.chat.completions.create(body);
    expect(first.usage!.prompt_tokens).toBe(second.usage!.prompt_tokens);
    const cached = second.usage!.prompt_tokens_details!.cached_tokens!;
    // whole pages of 32 positions, short of the last token
    expect(cached).toBeGreaterThan(0);
    expect(cached % 32).toBe(0);
    expect(cached).toBeLessThan(second.usage!.prompt_tokens);
    const metrics = await (await fetch(s.baseURL.replace('/v1', '/metrics'))).text();
    expect(Number(/^gpt_oss_prefix_cache_hit_tokens\{model="[^"]+"\} (\d+)$/m.exec(metrics)![1])).toBeGreaterThanOrEqual(cached);
  });
});
