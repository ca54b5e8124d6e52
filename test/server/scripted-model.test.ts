// What random weights cannot show: a stand-in engine "samples" a scripted harmony answer
// (reasoning, a final answer, a tool call), so the mapping to Chat Completions and Responses
// output is checked exactly: reasoning vs content vs tool_calls, finish reasons, reasoning token
// counts, stop strings that end generation, and every Responses event. Then an engine that
// samples arbitrary ids (special tokens included) for many requests: every answer stays well
// formed. No GPU needed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import OpenAI from 'openai';
import type { GenerateOptions, GenerateResult } from '../../src/engine/engine.js';
import { HARMONY_STOP_TOKEN_IDS } from '../../src/harmony/index.js';
import type { ServingEngine } from '../../src/server/model-host.js';
import { ModelHost } from '../../src/server/model-host.js';
import { loadModelTokenizer, type HarmonyTokenizer } from '../../src/tokenizer/index.js';
import { createServer } from '../../src/server/app.js';
import { ModelRegistry } from '../../src/server/models.js';
import { defaultRouting } from '../../src/server/routing.js';
import { MODEL, post, startServer, type TestServer } from './helpers.js';

/** Plays back `next()`'s tokens as if sampled, honouring maxTokens, stop tokens, onToken and the signal. */
class ScriptedEngine implements ServingEngine {
  readonly contextLength = 4096;
  readonly config = { eosTokenIds: [] as number[] };
  isBusy = false;
  calls = 0;
  /** The output budget of the last request. */
  maxTokens = 0;
  /** When set, the next generation fails after this many tokens (a failed engine step); then cleared. */
  failAt: number | null = null;

  constructor(public next: () => number[]) {}

  async generate(prompt: readonly number[], o: GenerateOptions): Promise<GenerateResult> {
    if (this.isBusy) throw new Error('busy');
    this.isBusy = true;
    this.calls++;
    this.maxTokens = o.maxTokens;
    const tokens: number[] = [];
    const stop = new Set(o.stopTokens ?? []);
    let finishReason: GenerateResult['finishReason'] = 'length';
    const failAt = this.failAt;
    this.failAt = null;
    try {
      for (const id of this.next()) {
        if (tokens.length >= o.maxTokens) break;
        // What the engine does when a step fails: it rejects the generations of that step.
        if (tokens.length === failAt) {
          await new Promise((r) => setImmediate(r));
          throw new Error('the step failed: readback error (internal detail /srv/secret)');
        }
        await new Promise((r) => setImmediate(r));
        tokens.push(id);
        if (o.onToken?.(id) === false || o.signal?.aborted) {
          finishReason = 'abort';
          break;
        }
        if (stop.has(id)) {
          finishReason = 'stop';
          break;
        }
      }
    } finally {
      this.isBusy = false;
    }
    return { tokens, finishReason, promptTokens: prompt.length, cachedTokens: 0, queueMs: 0, prefillMs: 0, decodeMs: 0 };
  }

  destroy(): void {}
}

let tokenizer: HarmonyTokenizer;
let engine: ScriptedEngine;
let s: TestServer;
const harmony = (text: string) => tokenizer.encodeWithSpecialTokens(text);

const ANSWER = '<|channel|>analysis<|message|>The user greets me. Answer politely.<|end|><|start|>assistant<|channel|>final<|message|>Hello world! How are you?<|return|>';
const TOOL_CALL =
  '<|channel|>analysis<|message|>Need the weather tool.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}<|call|>';
const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
];
const ask = { model: MODEL, messages: [{ role: 'user' as const, content: 'Hi' }] };

beforeAll(async () => {
  tokenizer = await loadModelTokenizer();
  engine = new ScriptedEngine(() => harmony(ANSWER));
  s = await startServer({ engine, tokenizer });
});
afterAll(async () => {
  await s?.close();
});

describe('chat completions from a scripted answer', () => {
  it('reasoning and content are split; finish_reason stop; usage counts reasoning tokens', async () => {
    engine.next = () => harmony(ANSWER);
    const r = await s.client.chat.completions.create(ask);
    const m = r.choices[0]!.message as OpenAI.Chat.Completions.ChatCompletionMessage & { reasoning?: string; reasoning_content?: string };
    expect(m.content).toBe('Hello world! How are you?');
    expect(m.reasoning).toBe('The user greets me. Answer politely.');
    expect(m.reasoning_content).toBe(m.reasoning);
    expect(m.tool_calls).toBeUndefined();
    expect(r.choices[0]!.finish_reason).toBe('stop');
    expect(r.usage!.completion_tokens).toBe(harmony(ANSWER).length);
    expect(r.usage!.completion_tokens_details!.reasoning_tokens).toBe(harmony('<|channel|>analysis<|message|>The user greets me. Answer politely.<|end|>').length);
  });

  it('streaming sends the same as deltas', async () => {
    engine.next = () => harmony(ANSWER);
    const stream = await s.client.chat.completions.create({ ...ask, stream: true });
    let content = '';
    let reasoning = '';
    let reasoningContent = '';
    let finish: string | null = null;
    for await (const c of stream) {
      const d = c.choices[0]!.delta as { content?: string; reasoning?: string; reasoning_content?: string };
      content += d.content ?? '';
      reasoning += d.reasoning ?? '';
      reasoningContent += d.reasoning_content ?? '';
      finish = c.choices[0]!.finish_reason ?? finish;
    }
    expect(content).toBe('Hello world! How are you?');
    expect(reasoning).toBe('The user greets me. Answer politely.');
    expect(reasoningContent).toBe(reasoning);
    expect(finish).toBe('stop');
  });

  it('a tool call becomes tool_calls with an id and JSON arguments; finish_reason tool_calls', async () => {
    engine.next = () => harmony(TOOL_CALL);
    const r = await s.client.chat.completions.create({ ...ask, tools });
    const m = r.choices[0]!.message;
    expect(m.content).toBeNull();
    expect(m.tool_calls).toEqual([{ id: expect.stringMatching(/^call_\w+$/), type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]);
    expect(r.choices[0]!.finish_reason).toBe('tool_calls');

    const stream = await s.client.chat.completions.create({ ...ask, tools, stream: true });
    const calls: Array<{ id?: string; name?: string; arguments: string }> = [];
    let finish: string | null = null;
    for await (const c of stream) {
      for (const t of c.choices[0]?.delta.tool_calls ?? []) {
        calls[t.index] ??= { arguments: '' };
        if (t.id) calls[t.index]!.id = t.id;
        if (t.function?.name) calls[t.index]!.name = t.function.name;
        calls[t.index]!.arguments += t.function?.arguments ?? '';
      }
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(calls).toEqual([{ id: expect.stringMatching(/^call_/), name: 'get_weather', arguments: '{"city":"Paris"}' }]);
    expect(finish).toBe('tool_calls');
  });

  it('without tools, or with tool_choice none, a call the model writes anyway comes back as text', async () => {
    engine.next = () => harmony(TOOL_CALL);
    for (const extra of [{}, { tools, tool_choice: 'none' as const }]) {
      const r = await s.client.chat.completions.create({ ...ask, ...extra });
      expect(r.choices[0]!.message.tool_calls).toBeUndefined();
      expect(r.choices[0]!.message.content).toBe('[functions.get_weather] {"city":"Paris"}');
      expect(r.choices[0]!.finish_reason).toBe('stop');
    }
  });

  it('a stop string ends generation early and is not returned', async () => {
    engine.next = () => harmony(ANSWER);
    const r = await s.client.chat.completions.create({ ...ask, stop: ['o w', 'never'] });
    expect(r.choices[0]!.message.content).toBe('Hell');
    expect(r.choices[0]!.finish_reason).toBe('stop');
    expect(r.usage!.completion_tokens).toBeLessThan(harmony(ANSWER).length);
    const stream = await s.client.chat.completions.create({ ...ask, stop: 'How', stream: true });
    let content = '';
    for await (const c of stream) content += c.choices[0]?.delta.content ?? '';
    expect(content).toBe('Hello world! ');
  });

  it('/v1/completions writes out the harmony text and leaves out the final stop token', async () => {
    engine.next = () => harmony(ANSWER);
    const r = await s.client.completions.create({ model: MODEL, prompt: '<|start|>user<|message|>Hi<|end|><|start|>assistant' });
    expect(r.choices[0]!.text).toBe(ANSWER.slice(0, -'<|return|>'.length));
    expect(r.choices[0]!.finish_reason).toBe('stop');
  });
});

describe('responses from a scripted answer', () => {
  it('non-streaming: a reasoning item with reasoning_text and a completed message', async () => {
    engine.next = () => harmony(ANSWER);
    const r = await s.client.responses.create({ model: MODEL, input: 'Hi' });
    expect(r.status).toBe('completed');
    expect(r.output).toEqual([
      { type: 'reasoning', id: expect.stringMatching(/^rs_/), summary: [], content: [{ type: 'reasoning_text', text: 'The user greets me. Answer politely.' }] },
      {
        type: 'message',
        id: expect.stringMatching(/^msg_/),
        role: 'assistant',
        status: 'completed',
        content: [{ type: 'output_text', text: 'Hello world! How are you?', annotations: [], logprobs: [] }],
      },
    ]);
    expect(r.output_text).toBe('Hello world! How are you?');
    expect(r.usage!.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
  });

  it('streaming: reasoning_text and output_text events, then response.completed', async () => {
    engine.next = () => harmony(ANSWER);
    const stream = await s.client.responses.create({ model: MODEL, input: 'Hi', stream: true });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const e of stream) events.push(e);
    const types = [...new Set(events.map((e) => e.type))];
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.reasoning_text.delta',
      'response.reasoning_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.output_text.delta',
      'response.output_text.done',
      'response.completed',
    ]);
    const reasoning = events.filter((e) => e.type === 'response.reasoning_text.delta').map((e) => (e as { delta: string }).delta).join('');
    expect(reasoning).toBe('The user greets me. Answer politely.');
    const done = events.find((e) => e.type === 'response.reasoning_text.done') as { text: string };
    expect(done.text).toBe(reasoning);
    const completed = events.at(-1) as OpenAI.Responses.ResponseCompletedEvent;
    expect(completed.response.status).toBe('completed');
    expect(completed.response.output.map((o) => o.type)).toEqual(['reasoning', 'message']);
  });

  it('a tool call becomes a function_call item, streamed with argument deltas', async () => {
    engine.next = () => harmony(TOOL_CALL);
    const flatTools = [{ type: 'function' as const, name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false }];
    const r = await s.client.responses.create({ model: MODEL, input: 'Weather in Paris?', tools: flatTools });
    const call = r.output.find((o) => o.type === 'function_call') as OpenAI.Responses.ResponseFunctionToolCall;
    expect(call).toMatchObject({ name: 'get_weather', arguments: '{"city":"Paris"}', call_id: expect.stringMatching(/^call_/), id: expect.stringMatching(/^fc_/), status: 'completed' });

    const helper = s.client.responses.stream({ model: MODEL, input: 'Weather in Paris?', tools: flatTools });
    const kinds: string[] = [];
    helper.on('event', (e) => kinds.push(e.type));
    const final = await helper.finalResponse();
    expect(kinds).toContain('response.function_call_arguments.delta');
    expect(kinds).toContain('response.function_call_arguments.done');
    expect(final.output.find((o) => o.type === 'function_call')).toMatchObject({ name: 'get_weather', arguments: '{"city":"Paris"}' });

    // The tool loop continues with previous_response_id and the function's output.
    engine.next = () => harmony(ANSWER);
    const next = await s.client.responses.create({
      model: MODEL,
      previous_response_id: r.id,
      tools: flatTools,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"temp":21}' }],
    });
    expect(next.status).toBe('completed');
    expect(next.output_text).toBe('Hello world! How are you?');
  });
});

describe('arbitrary sampled ids', () => {
  it('never break a response: 120 requests over all routes, streaming or not, stay well formed', async () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const pieces = [
      ...Array.from({ length: 21 }, (_, i) => [199998 + i]), // every harmony special token and some reserved ones
      [201087],
      harmony('<|start|>assistant'),
      harmony('<|channel|>analysis<|message|>'),
      harmony('<|channel|>final<|message|>'),
      harmony('<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>'),
      harmony(' to=functions.<|channel|>'),
      harmony('<|start|>functions.x to=assistant<|channel|>commentary<|message|>'),
      [9552], // half an emoji: invalid UTF-8 on its own
      [24912, 2375],
    ];
    engine.next = () => {
      const out: number[] = [];
      const n = 1 + Math.floor(rand() * 40);
      while (out.length < n) {
        if (rand() < 0.5) out.push(...pieces[Math.floor(rand() * pieces.length)]!);
        else out.push(Math.floor(rand() * 199998));
      }
      // Keep the stop tokens rare, so most answers run long.
      return out.filter((t) => !HARMONY_STOP_TOKEN_IDS.includes(t) || rand() < 0.3);
    };
    const seen = new Set<string>();
    // Special and reserved tokens never become text.
    const noFormatTokens = (text: string | null | undefined, where: string) => expect(text ?? '', where).not.toMatch(/<\|[a-z_0-9]+\|>/);
    for (let i = 0; i < 120; i++) {
      const withTools = i % 2 === 0 ? { tools } : {};
      switch (i % 4) {
        case 0: {
          const r = await s.client.chat.completions.create({ ...ask, ...withTools, max_tokens: 30 });
          const m = r.choices[0]!.message;
          expect(m.content === null || typeof m.content === 'string').toBe(true);
          if (m.tool_calls?.length) seen.add('tool_calls');
          if ((m as { reasoning?: string | null }).reasoning) seen.add('reasoning');
          if (m.content) seen.add('content');
          noFormatTokens(m.content, 'content');
          noFormatTokens((m as { reasoning?: string | null }).reasoning, 'reasoning');
          for (const c of m.tool_calls ?? []) expect(c).toMatchObject({ id: expect.any(String), type: 'function', function: { name: expect.any(String), arguments: expect.any(String) } });
          expect(['stop', 'length', 'tool_calls']).toContain(r.choices[0]!.finish_reason);
          break;
        }
        case 1: {
          const stream = await s.client.chat.completions.create({ ...ask, ...withTools, max_tokens: 30, stream: true, stream_options: { include_usage: true } });
          let usage: OpenAI.CompletionUsage | undefined;
          for await (const c of stream) {
            usage = c.usage ?? usage;
            noFormatTokens(c.choices[0]?.delta.content, 'content delta');
            noFormatTokens((c.choices[0]?.delta as { reasoning?: string } | undefined)?.reasoning, 'reasoning delta');
          }
          expect(usage!.completion_tokens).toBeLessThanOrEqual(30);
          break;
        }
        case 2: {
          const r = await s.client.responses.create({ model: MODEL, input: 'Hi', max_output_tokens: 30 });
          for (const o of r.output) {
            expect(['reasoning', 'message', 'function_call']).toContain(o.type);
            seen.add(o.type);
            if (o.type === 'message') for (const c of o.content) noFormatTokens((c as { text?: string }).text, 'output_text');
            if (o.type === 'reasoning') for (const c of o.content ?? []) noFormatTokens(c.text, 'reasoning_text');
          }
          break;
        }
        case 3: {
          const final = await s.client.responses.stream({ model: MODEL, input: 'Hi', max_output_tokens: 30 }).finalResponse();
          expect(['completed', 'incomplete']).toContain(final.status);
          break;
        }
      }
    }
    // The mix did reach every kind of output.
    expect([...seen].sort()).toEqual(['content', 'message', 'reasoning', 'tool_calls']);
    const metrics = await (await fetch(s.baseURL.replace('/v1', '/metrics'))).text();
    expect(metrics).not.toMatch(/status="5\d\d"/);
  });
});

describe('request limits', () => {
  it('without max_tokens the default cap applies (never more than the context left); a prompt over the limit is a 400; /v1/models shows both', async () => {
    const limited = await startServer({ engine, tokenizer, maxTokensDefault: 7, maxPromptTokens: 200 });
    try {
      engine.next = () => harmony(ANSWER);
      const r = await limited.client.chat.completions.create({ ...ask });
      expect(engine.maxTokens).toBe(7);
      expect(r.usage!.completion_tokens).toBe(7);
      await post(limited.baseURL, '/chat/completions', { ...ask, max_tokens: null });
      expect(engine.maxTokens).toBe(7);
      await post(limited.baseURL, '/responses', { model: MODEL, input: 'Hi' });
      expect(engine.maxTokens).toBe(7);
      // Asking for more than the default is the client's right.
      await limited.client.chat.completions.create({ ...ask, max_tokens: 50 });
      expect(engine.maxTokens).toBe(50);
      const long = 'word '.repeat(300);
      for (const [route, body, param] of [
        ['/chat/completions', { ...ask, messages: [{ role: 'user', content: long }] }, 'messages'],
        ['/completions', { model: MODEL, prompt: long }, 'prompt'],
        ['/responses', { model: MODEL, input: long }, 'input'],
      ] as const) {
        const refused = await post(limited.baseURL, route, body);
        expect(refused.status, route).toBe(400);
        expect(refused.json.error).toMatchObject({ type: 'invalid_request_error', param, code: 'context_length_exceeded', message: expect.stringContaining('at most 200 tokens') });
      }
      const model = (await limited.client.models.retrieve(MODEL)) as unknown as Record<string, unknown>;
      expect(model).toMatchObject({ max_model_len: 4096, max_tokens_default: 7, max_prompt_tokens: 200 });
    } finally {
      await limited.close();
    }
    // The default server: 4096 by default, but never more than the context left after the prompt.
    const r = await s.client.chat.completions.create({ ...ask, max_tokens: null });
    expect(engine.maxTokens).toBe(4096 - r.usage!.prompt_tokens);
    expect(await s.client.models.retrieve(MODEL)).toMatchObject({ max_tokens_default: 4096, max_prompt_tokens: 4096 });
  });
});

describe('engine failures', () => {
  it('are 500s that leak nothing, error events inside streams, and the server keeps serving', async () => {
    engine.next = () => {
      throw new Error('kernel failed: internal detail /srv/secret');
    };
    const r = await post(s.baseURL, '/chat/completions', ask);
    expect(r.status).toBe(500);
    expect(r.json).toEqual({ error: { message: expect.any(String), type: 'server_error', param: null, code: null } });
    expect(JSON.stringify(r.json)).not.toContain('secret');
    const drain = async (stream: AsyncIterable<unknown>) => {
      for await (const _ of stream);
    };
    const chatStream = await s.client.chat.completions.create({ ...ask, stream: true });
    await expect(drain(chatStream)).rejects.toBeInstanceOf(OpenAI.APIError);
    const responsesStream = await s.client.responses.create({ model: MODEL, input: 'Hi', stream: true });
    await expect(drain(responsesStream)).rejects.toBeInstanceOf(OpenAI.APIError);
    const completionsStream = await s.client.completions.create({ model: MODEL, prompt: 'x', stream: true });
    await expect(drain(completionsStream)).rejects.toBeInstanceOf(OpenAI.APIError);

    engine.next = () => harmony(ANSWER);
    const ok = await s.client.chat.completions.create(ask);
    expect(ok.choices[0]!.finish_reason).toBe('stop');
    const metrics = await (await fetch(s.baseURL.replace('/v1', '/metrics'))).text();
    expect(metrics).toMatch(/^gpt_oss_generations_total\{reason="error"\} [1-9]/m);
  });
});

describe('a step that fails mid-generation', () => {
  it('fails only its request (a 500, or an error event that ends the stream); the request queued behind it and the next one succeed', async () => {
    // Streamed: a few tokens arrive, then the error event, then the end.
    engine.failAt = 8;
    const failing = await s.client.chat.completions.create({ ...ask, stream: true });
    // Queued behind it (the stand-in runs one at a time): it runs once the failed one is out.
    const queued = s.client.chat.completions.create(ask);
    let chunks = 0;
    const err = await (async () => {
      try {
        for await (const _ of failing) chunks++;
      } catch (e) {
        return e;
      }
      return null;
    })();
    // The role chunk and some content came before the failure.
    expect(chunks).toBeGreaterThanOrEqual(2);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err).toMatchObject({ type: 'server_error' });
    expect(JSON.stringify(err)).not.toContain('secret');
    expect((await queued).choices[0]!.finish_reason).toBe('stop');

    // Not streamed: an OpenAI-shaped 500.
    engine.failAt = 5;
    const r = await post(s.baseURL, '/chat/completions', ask);
    expect(r.status).toBe(500);
    expect(r.json).toEqual({ error: { message: expect.any(String), type: 'server_error', param: null, code: null } });
    engine.failAt = 5;
    const responses = await post(s.baseURL, '/responses', { model: MODEL, input: 'Hi' });
    expect(responses.status).toBe(500);
    expect(responses.json.error).toMatchObject({ type: 'server_error' });

    // The server is up and serves the next request.
    expect((await fetch(s.baseURL.replace('/v1', '/health'))).status).toBe(200);
    const next = await s.client.chat.completions.create(ask);
    expect(next.choices[0]!.message.content).toBe('Hello world! How are you?');
  });
});

describe('SSE and Connection: close', () => {
  /** A raw HTTP/1.1 request; resolves with what came back and whether the server closed the socket. */
  function raw(connection: 'close' | 'keep-alive'): Promise<{ text: string; closedByServer: boolean }> {
    const url = new URL(s.baseURL);
    const body = JSON.stringify({ ...ask, stream: true });
    return new Promise((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname);
      let text = '';
      let timer: ReturnType<typeof setTimeout> | undefined;
      socket.setEncoding('utf8');
      socket.on('error', reject);
      socket.on('data', (d: string) => {
        text += d;
        // After the last event: a kept-alive socket stays open, so stop waiting a moment later.
        if (text.includes('data: [DONE]') && !timer) {
          timer = setTimeout(() => {
            socket.destroy();
            resolve({ text, closedByServer: false });
          }, 500);
        }
      });
      socket.on('end', () => {
        clearTimeout(timer);
        resolve({ text, closedByServer: true });
      });
      socket.write(
        `POST /v1/chat/completions HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: ${connection}\r\n\r\n${body}`,
      );
    });
  }

  it('a stream requested with Connection: close ends with the socket closed; keep-alive keeps it open', async () => {
    engine.next = () => harmony(ANSWER);
    const closed = await raw('close');
    expect(closed.text).toMatch(/^HTTP\/1\.1 200/);
    expect(closed.text).toMatch(/\r\nconnection: close\r\n/i);
    expect(closed.text).toContain('data: [DONE]');
    expect(closed.closedByServer).toBe(true);
    const kept = await raw('keep-alive');
    expect(kept.text).toContain('data: [DONE]');
    expect(kept.text).toMatch(/\r\nconnection: keep-alive\r\n/i);
    expect(kept.closedByServer).toBe(false);
  });
});

describe('scopes', () => {
  it('the API scope takes the key as a bearer token or as x-api-key; /health stays open; /admin is off without an admin key', async () => {
    const locked = await startServer({ engine, tokenizer, apiKey: 'sk-scoped-123' });
    try {
      engine.next = () => harmony(ANSWER);
      const root = locked.baseURL.replace('/v1', '');
      expect((await fetch(`${root}/health`)).status).toBe(200);
      expect((await post(locked.baseURL, '/chat/completions', ask)).status).toBe(401);
      expect((await post(locked.baseURL, '/chat/completions', ask, { 'x-api-key': 'sk-wrong-000' })).status).toBe(401);
      expect((await post(locked.baseURL, '/chat/completions', ask, { 'x-api-key': 'sk-scoped-123' })).status).toBe(200);
      expect((await post(locked.baseURL, '/chat/completions', ask, { authorization: 'Bearer sk-scoped-123' })).status).toBe(200);
      expect((await fetch(`${root}/metrics`, { headers: { 'x-api-key': 'sk-scoped-123' } })).status).toBe(200);
      const admin = await fetch(`${root}/admin/usage`, { headers: { authorization: 'Bearer sk-scoped-123' } });
      expect(admin.status).toBe(403);
      expect(await admin.json()).toMatchObject({ error: { code: 'admin_disabled' } });
    } finally {
      await locked.close();
    }
  });
});

describe('model registry', () => {
  it('refuses a name given twice and a routing rule that names no served model, before anything loads', () => {
    expect(() => ModelRegistry.routingFor([], undefined)).toThrow(/at least one model/);
    expect(() => ModelRegistry.routingFor(['a', 'a'], undefined)).toThrow(/named "a"/);
    expect(ModelRegistry.routingFor(['a'], undefined)).toBeNull();
    expect(ModelRegistry.routingFor(['a', 'b'], undefined)).toMatchObject({ name: 'auto', small: 'a', large: 'b' });
    expect(() => ModelRegistry.routingFor(['a'], defaultRouting('a', 'b'))).toThrow(/at least two models/);
    expect(() => ModelRegistry.routingFor(['a', 'b'], defaultRouting('a', 'c'))).toThrow(/must be served models/);
    expect(() => createServer({ models: [{ spec: 'synthetic:tiny' }, { spec: 'synthetic:tiny' }] })).toThrow(/named "synthetic:tiny"/);
  });
});

describe('model host', () => {
  it('answers 503 while loading and after a failed load', async () => {
    const loading = new ModelHost(new Promise(() => {}));
    expect(loading.status).toBe('loading');
    expect(() => loading.ready()).toThrow(expect.objectContaining({ status: 503, code: 'model_loading' }));
    const app = createServer({ models: [{ spec: 'synthetic:nonexistent' }], logger: false });
    try {
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      await app.gptOss.models.all[0]!.host.loaded;
      const health = await fetch(`${url}/health`);
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ status: 'failed', error: { code: 'model_load_failed', message: expect.stringContaining('unknown synthetic model') } });
      const r = await post(`${url}/v1`, '/chat/completions', { ...ask, model: 'synthetic:nonexistent' });
      expect(r.status).toBe(503);
      expect(r.json.error).toMatchObject({ type: 'server_error', code: 'model_load_failed' });
    } finally {
      await app.close();
    }
  });
});
