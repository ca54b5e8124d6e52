// n > 1 through the real server and the official openai client: the choices of one request are
// separate engine sequences, each with its own seed stream (seed + index; choice i is what the
// request with n=1 and that seed answers), sharing the prompt through the prefix cache (choices
// 1.. start after choice 0's prefill and hit its pages). Non-streaming and streaming agree; usage
// counts the prompt once and sums the completions; per-choice tool calls, logprobs, stop strings
// and response formats; a bad n is a 400 naming it and the server keeps serving; a client that
// leaves stops every choice.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CHOICES } from '../../src/server/generation.js';
import { FIXED_LENGTH, MODEL, post, startServer, until, type TestServer } from './helpers.js';

let s: TestServer;
beforeAll(async () => {
  // forced output (tool_choice required, response_format) reasons at most 2 tokens, short JSON
  s = await startServer({ constrainedReasoningTokens: 2, constraintBounds: { maxStringChars: 6, maxKeyChars: 6, maxWhitespace: 0, maxItems: 2, maxProperties: 2, maxNumberDigits: 3, maxDepth: 3 } });
});
afterAll(async () => {
  await s?.close();
});

/** The prefix cache's hit count since start (/metrics). */
async function cacheHits(): Promise<number> {
  const metrics = await (await fetch(s.baseURL.replace('/v1', '/metrics'))).text();
  return Number(/^gpt_oss_prefix_cache_hit_tokens\{model="[^"]+"\} (\d+)$/m.exec(metrics)![1]);
}

/** A prompt no other test sent (so choice 0 finds nothing cached) of several 32-position pages. */
let prompts = 0;
const freshMessages = () => [{ role: 'user' as const, content: `Question ${prompts++} of the n tests: ${'tell me about the sea and the sky. '.repeat(8)}` }];
const text = (m: { content: string | null; reasoning?: string | null }) => `${m.reasoning ?? ''}|${m.content ?? ''}`;
type Msg = OpenAI.Chat.Completions.ChatCompletionMessage & { reasoning?: string | null };

describe('n > 1 in chat completions', () => {
  it('n=3: indexes 0..2, each choice what n=1 with seed + index answers; the prompt once, completions summed; choices 1.. hit the prefix cache', async () => {
    const messages = freshMessages();
    const req = { model: MODEL, messages, max_tokens: 8, temperature: 1, seed: 7, ...FIXED_LENGTH };
    const before = await cacheHits();
    const r = await s.client.chat.completions.create({ ...req, n: 3 });
    const hits = (await cacheHits()) - before;
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    for (const c of r.choices) expect(c.finish_reason).toBe('length');
    const usage = r.usage!;
    expect(usage.completion_tokens).toBe(24);
    expect(usage.total_tokens).toBe(usage.prompt_tokens + 24);
    // choice 0 found nothing of this fresh prompt; choices 1 and 2 found its whole pages
    expect(usage.prompt_tokens_details!.cached_tokens).toBe(0);
    const pages = Math.floor((usage.prompt_tokens - 1) / 32) * 32;
    expect(pages).toBeGreaterThanOrEqual(64);
    expect(hits).toBeGreaterThanOrEqual(2 * pages);

    const alone: OpenAI.Chat.Completions.ChatCompletion[] = [];
    for (let i = 0; i < 3; i++) alone.push(await s.client.chat.completions.create({ ...req, seed: 7 + i }));
    expect(alone[0]!.usage!.prompt_tokens).toBe(usage.prompt_tokens);
    r.choices.forEach((c, i) => expect(text(c.message as Msg), `choice ${i}`).toBe(text(alone[i]!.choices[0]!.message as Msg)));
    expect(new Set(r.choices.map((c) => text(c.message as Msg))).size).toBe(3);
    // the same request again answers the same choices
    const again = await s.client.chat.completions.create({ ...req, n: 3 });
    expect(again.choices.map((c) => text(c.message as Msg))).toEqual(r.choices.map((c) => text(c.message as Msg)));
    // without a seed each choice draws its own
    const unseeded = await s.client.chat.completions.create({ model: MODEL, messages, max_tokens: 8, n: 3, ...FIXED_LENGTH });
    expect(new Set(unseeded.choices.map((c) => text(c.message as Msg))).size).toBe(3);
  });

  it('streamed: chunks carry their index, one finish chunk per choice, one usage chunk last, [DONE] once; the same text as not streamed', async () => {
    const req = { model: MODEL, messages: freshMessages(), max_tokens: 6, temperature: 1, seed: 11, n: 3, ...FIXED_LENGTH };
    const plain = await s.client.chat.completions.create(req);
    const stream = await s.client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    const got = ['', '', ''].map(() => ({ content: '', reasoning: '', finishes: [] as string[], roles: 0 }));
    chunks.forEach((c, k) => {
      if (c.usage) {
        expect(k, 'usage comes last').toBe(chunks.length - 1);
        expect(c.choices).toEqual([]);
        return;
      }
      expect(c.choices).toHaveLength(1);
      const ch = c.choices[0]!;
      const g = got[ch.index]!;
      const d = ch.delta as { content?: string; reasoning?: string; role?: string };
      if (d.role) g.roles++;
      g.content += d.content ?? '';
      g.reasoning += d.reasoning ?? '';
      if (ch.finish_reason) g.finishes.push(ch.finish_reason);
    });
    got.forEach((g, i) => {
      expect(g.roles, `choice ${i}`).toBe(1);
      expect(g.finishes).toEqual(['length']);
      expect(`${g.reasoning}|${g.content}`).toBe(text(plain.choices[i]!.message as Msg));
    });
    expect(chunks.at(-1)!.usage).toMatchObject({ prompt_tokens: plain.usage!.prompt_tokens, completion_tokens: 18 });
    // [DONE] once, after everything
    const res = await fetch(`${s.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...req, max_tokens: 2, stream: true }) });
    const raw = await res.text();
    expect(raw.match(/data: \[DONE\]/g)).toHaveLength(1);
    expect(raw.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  it('per choice: forced tool calls, JSON answers, logprobs', async () => {
    const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false } } }];
    const calls = await s.client.chat.completions.create({ model: MODEL, messages: freshMessages(), tools, tool_choice: 'required', max_tokens: 100, seed: 3, n: 2 });
    expect(calls.choices).toHaveLength(2);
    for (const c of calls.choices) {
      expect(c.finish_reason).toBe('tool_calls');
      const call = c.message.tool_calls![0] as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
      expect(call.function.name).toBe('get_weather');
      expect(typeof JSON.parse(call.function.arguments).city).toBe('string');
    }

    const schema = { type: 'object', properties: { n: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['n'], additionalProperties: false };
    const json = await s.client.chat.completions.create({ model: MODEL, messages: freshMessages(), response_format: { type: 'json_schema', json_schema: { name: 'n', schema, strict: true } }, max_tokens: 80, seed: 5, n: 3 });
    for (const c of json.choices) expect(JSON.parse(c.message.content!).n).toBeGreaterThanOrEqual(0);

    const lp = await s.client.chat.completions.create({ model: MODEL, messages: freshMessages(), max_tokens: 16, temperature: 0, logprobs: true, top_logprobs: 2, n: 2, ...FIXED_LENGTH });
    for (const c of lp.choices) {
      const content = c.logprobs!.content!;
      const strip = (x: string) => x.replace(/\s+/g, '');
      expect(strip(Buffer.from(content.flatMap((e) => e.bytes!)).toString('utf8'))).toBe(strip(c.message.content!));
      for (const e of content) expect(e.top_logprobs).toHaveLength(2);
    }
  });
});

describe('n > 1 in completions', () => {
  it('n=3 with logprobs and a stop string, streamed and not; each choice what n=1 with seed + index answers', async () => {
    const req = { model: MODEL, prompt: `Completions n test: ${'the sea and the sky '.repeat(12)}`, max_tokens: 10, temperature: 1, seed: 21, logprobs: 1, ...FIXED_LENGTH };
    const before = await cacheHits();
    const r = await s.client.completions.create({ ...req, n: 3 });
    expect((await cacheHits()) - before).toBeGreaterThanOrEqual(2 * 32);
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(r.usage!.completion_tokens).toBe(30);
    for (const [i, c] of r.choices.entries()) {
      const one = (await s.client.completions.create({ ...req, seed: 21 + i })).choices[0]!;
      expect(c.text).toBe(one.text);
      expect(c.logprobs!.tokens).toEqual(one.logprobs!.tokens);
    }
    // a stop string taken from choice 1's text ends that choice there, and only where it occurs
    const stop = r.choices[1]!.text.slice(3, 6);
    const stopped = await s.client.completions.create({ ...req, n: 3, stop });
    expect(stopped.choices[1]!.text).toBe(r.choices[1]!.text.slice(0, r.choices[1]!.text.indexOf(stop)));
    expect(stopped.choices[1]!.finish_reason).toBe('stop');

    const stream = await s.client.completions.create({ ...req, n: 3, stream: true, stream_options: { include_usage: true } });
    const texts = ['', '', ''];
    const finishes: string[][] = [[], [], []];
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      if (c.usage) usage = c.usage;
      for (const ch of c.choices) {
        texts[ch.index] += ch.text;
        if (ch.finish_reason) finishes[ch.index]!.push(ch.finish_reason);
      }
    }
    expect(texts).toEqual(r.choices.map((c) => c.text));
    expect(finishes).toEqual([['length'], ['length'], ['length']]);
    expect(usage).toMatchObject({ prompt_tokens: r.usage!.prompt_tokens, completion_tokens: 30 });
  });
});

describe('bad n and aborts', () => {
  it(`n over ${MAX_CHOICES} is a 400 naming n and its value; n=0 too; the server keeps serving`, async () => {
    const chat = { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 };
    const over = await post(s.baseURL, '/chat/completions', { ...chat, n: MAX_CHOICES + 1 });
    expect(over.status).toBe(400);
    expect(over.json.error).toMatchObject({ param: 'n', type: 'invalid_request_error', message: expect.stringContaining(`n=${MAX_CHOICES + 1}`) });
    const err = await s.client.completions.create({ model: MODEL, prompt: 'hi', max_tokens: 1, n: 40 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('n');
    expect((await post(s.baseURL, '/chat/completions', { ...chat, n: 0 })).status).toBe(400);
    const ok = await s.client.chat.completions.create({ ...chat, messages: [{ role: 'user', content: 'Still there?' }], n: 2 } as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming);
    expect(ok.choices).toHaveLength(2);
  });

  it('a client that leaves a stream of n=3 stops all three', async () => {
    const ac = new AbortController();
    const stream = await s.client.chat.completions.create(
      { model: MODEL, messages: freshMessages(), max_tokens: 400, n: 3, stream: true, ...FIXED_LENGTH },
      { signal: ac.signal },
    );
    const seen = new Set<number>();
    try {
      for await (const c of stream) {
        for (const ch of c.choices) seen.add(ch.index);
        if (seen.size === 3) ac.abort();
      }
    } catch (e) {
      expect((e as Error).name).toMatch(/Abort/);
    }
    await until('every choice stopped', () => s.model.queue.running === 0 && s.model.queue.queueDepth === 0, { timeoutMs: 30_000 });
    expect(s.app.gptOss.lastGeneration!.tokens).toBeLessThan(400);
  });
});

describe('n > 1 on an engine of one sequence with no queue', () => {
  let one: TestServer;
  beforeAll(async () => {
    one = await startServer({ maxNumSeqs: 1, maxQueue: 0 });
  });
  afterAll(async () => {
    await one?.close();
  });

  it('the choices take their turns past the queue limit (the request was admitted); the usage ledger counts the prompt once', async () => {
    const r = await one.client.chat.completions.create({ model: MODEL, messages: freshMessages(), max_tokens: 4, seed: 1, n: 3, ...FIXED_LENGTH });
    expect(r.choices.map((c) => c.finish_reason)).toEqual(['length', 'length', 'length']);
    const [row] = one.app.gptOss.usage.rows();
    expect(row).toMatchObject({ requests: 3, prompt_tokens: r.usage!.prompt_tokens, completion_tokens: 12 });
    // a second request while one runs still finds the queue full
    const first = one.client.chat.completions.create({ model: MODEL, messages: freshMessages(), max_tokens: 40, n: 2, ...FIXED_LENGTH });
    await until('the first request runs', () => one.model.queue.running === 1);
    const busy = await post(one.baseURL, '/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 });
    expect(busy.status).toBe(429);
    expect((await first).choices).toHaveLength(2);
  });
});
