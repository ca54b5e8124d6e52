// Bad input never crashes the server: a battery of over 200 malformed requests, built
// programmatically, each answered with the right 4xx in OpenAI's error shape while the server
// keeps serving. Then every request of the gpt-oss compatibility test (compat-cases.jsonl, with
// its tools) is accepted.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { renderChatCompletion } from '../../src/harmony/index.js';
import type { HarmonyTokenizer } from '../../src/tokenizer/index.js';
import { CURRENT_DATE, MODEL, REPO_ROOT, SHARED, startServer, type TestServer } from './helpers.js';

let s: TestServer;
let tokenizer: HarmonyTokenizer;
beforeAll(async () => {
  s = await startServer();
  tokenizer = s.model.host.ready().tokenizer;
});
afterAll(async () => {
  await s?.close();
});

type Route = '/chat/completions' | '/completions' | '/responses';

interface BadRequest {
  name: string;
  route: string;
  method?: string;
  /** A string is sent as is (broken JSON); anything else as JSON. */
  body: unknown;
  status: number;
  contentType?: string;
  code?: string;
}

const chatBase = { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 };
const completionsBase = { model: MODEL, prompt: 'hi', max_tokens: 1 };
const responsesBase = { model: MODEL, input: 'hi', max_output_tokens: 1 };
const bases: Record<Route, Record<string, unknown>> = { '/chat/completions': chatBase, '/completions': completionsBase, '/responses': responsesBase };

const fn = (f: Record<string, unknown>) => [{ type: 'function', function: { name: 'f', ...f } }];
const params = (p: unknown) => fn({ parameters: p });
const nested = (depth: number): unknown => (depth === 0 ? {} : { a: nested(depth - 1) });

function battery(): BadRequest[] {
  const cases: BadRequest[] = [];
  const add = (route: Route, name: string, body: unknown, status = 400, code?: string) => cases.push({ name, route, body, status, ...(code ? { code } : {}) });
  const field = (route: Route, key: string, values: unknown[], status = 400, code?: string) => {
    for (const v of values) add(route, `${key}=${JSON.stringify(v)?.slice(0, 40)}`, { ...bases[route], [key]: v }, status, code);
  };
  const without = (route: Route, key: string) => {
    const b = { ...bases[route] };
    delete b[key];
    add(route, `without ${key}`, b);
  };

  for (const route of Object.keys(bases) as Route[]) {
    // Broken JSON and bodies that are not objects.
    for (const raw of ['{', '{"model":', '{"messages": [}', 'nul', '[1,2', '{"a":1,}', "{'a':1}", '{"a":1} trailing', '"unterminated', '{"a": NaN}', '{"a": undefined}', '\u0000', '']) {
      add(route, `broken JSON ${JSON.stringify(raw)}`, raw);
    }
    add(route, 'prototype poisoning', '{"__proto__": {"polluted": 1}, "model": "x"}');
    add(route, 'constructor poisoning', '{"constructor": {"prototype": {"polluted": 1}}}');
    for (const raw of ['[]', '"text"', '123', 'null', 'true', '[{"role":"user"}]']) add(route, `non-object body ${raw}`, raw);
    // Fields every route has.
    field(route, 'model', [5, null, {}, [], true]);
    field(route, 'model', ['gpt-4o', 'openai/gpt-oss-120b', ''], 404, 'model_not_found');
    field(route, 'temperature', ['1', -0.1, 2.5, 1e308, true, {}]);
    field(route, 'top_p', ['x', -1, 1.5, []]);
    field(route, 'top_k', [-2, 1.5, 'x']);
    field(route, 'seed', [1.5, 'x', {}, true]);
    field(route, 'stream', ['yes', 1, {}]);
    field(route, 'metadata', [nested(100)]);
  }

  const chat = '/chat/completions';
  without(chat, 'messages');
  field(chat, 'messages', ['hi', 5, {}, null, [], [5], ['hi'], [null], [[]]]);
  const msg = (m: unknown) => ({ ...chatBase, messages: [m] });
  const badMessages: unknown[] = [
    {},
    { role: 'user' },
    { role: 'user', content: 5 },
    { role: 'user', content: {} },
    { role: 'user', content: true },
    { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] },
    { role: 'user', content: [{ text: 'no type' }] },
    { role: 'user', content: [{ type: 'text', text: 5 }] },
    { role: 'user', content: [5] },
    { role: 'robot', content: 'x' },
    { role: 'Tool', content: 'x' },
    { role: '', content: 'x' },
    { role: null, content: 'x' },
    { role: 5, content: 'x' },
    { role: ['user'], content: 'x' },
    { role: 'tool', content: 'x' },
    { role: 'tool', content: 'x', tool_call_id: 'never-made' },
    { role: 'tool', content: 'x', tool_call_id: 5 },
    { role: 'tool', tool_call_id: 'x' },
    { role: 'assistant', tool_calls: 'x' },
    { role: 'assistant', tool_calls: [{}] },
    { role: 'assistant', tool_calls: [{ function: {} }] },
    { role: 'assistant', tool_calls: [{ function: { name: 'bad name!', arguments: '{}' } }] },
    { role: 'assistant', tool_calls: [{ function: { name: 5 } }] },
    { role: 'assistant', tool_calls: [{ type: 'retrieval', function: { name: 'f' } }] },
    { role: 'assistant', reasoning: 5 },
    { role: 'assistant', reasoning_content: [] },
    { role: 'assistant', content: 5 },
    { role: 'system', content: null },
    { role: 'system' },
    { role: 'developer', content: {} },
    { role: 'function', content: 'x' },
  ];
  badMessages.forEach((m, i) => add(chat, `message #${i} ${JSON.stringify(m).slice(0, 50)}`, msg(m)));
  add(chat, 'tool result before any call', {
    ...chatBase,
    messages: [{ role: 'user', content: 'x' }, { role: 'tool', tool_call_id: 'call_1', content: 'out' }],
  });
  field(chat, 'tools', [
    'x', 5, {}, [5], [{}], [{ type: 'function' }], [{ type: 'retrieval', function: { name: 'f' } }],
    fn({ name: 'bad name' }), fn({ name: '' }), fn({ name: 'f'.repeat(65) }), fn({ name: 5 }), fn({ description: 5 }),
    [...fn({}), ...fn({})],
    params('x'), params([]), params(5), params({ type: 5 }), params({ type: 'objekt' }), params({ type: [] }),
    params({ type: 'object', properties: [] }), params({ type: 'object', properties: { a: 3 } }),
    params({ type: 'object', required: 'a' }), params({ type: 'object', required: [1] }),
    params({ type: 'object', properties: { a: { type: 'string', enum: 'x' } } }),
    params({ type: 'object', anyOf: [] }), params({ type: 'object', oneOf: 'x' }),
    params({ type: 'object', properties: { a: { type: ['string', 7] } } }),
    params({ type: 'object', properties: { a: { type: 'array', items: 5 } } }),
    params({ type: 'object', properties: { a: { description: 5 } } }),
    params({ type: 'object', additionalProperties: 5 }),
    params(nested(100)),
  ]);
  field(chat, 'tool_choice', ['sometimes', 5, [], { function: { name: 'f' } }]);
  // "required" and named functions are forced (constrained.test.ts); these cannot be.
  add(chat, 'tool_choice required without tools', { ...chatBase, tool_choice: 'required' });
  add(chat, 'tool_choice naming an unknown function', { ...chatBase, tools: fn({}), tool_choice: { type: 'function', function: { name: 'g' } } });
  add(chat, 'tool_choice of another tool kind', { ...chatBase, tools: fn({}), tool_choice: { type: 'allowed_tools', mode: 'auto' } }, 400, 'unsupported_parameter');
  add(chat, 'tool_choice named, parameters outside the supported subset', { ...chatBase, tools: params({ type: 'object', properties: { a: { type: 'string', pattern: '(?=x)x' } } }), tool_choice: { type: 'function', function: { name: 'f' } } }, 400, 'unsupported_schema');
  // lookaround and backreferences are outside the regular patterns constrained decoding compiles
  for (const schema of [{ type: 'string', pattern: '^(?!a)b$' }, { type: 'string', pattern: '^(a)\\1$' }, { type: 'object', patternProperties: { a: {} } }]) {
    add(chat, `response_format schema ${JSON.stringify(schema)}`, { ...chatBase, response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } }, 400, 'unsupported_schema');
  }
  field(chat, 'reasoning_effort', ['extreme', 5, '', 'none', {}]);
  field(chat, 'reasoning', ['high', { effort: 'extreme' }, { effort: 5 }, { exclude: 'yes' }]);
  field(chat, 'max_tokens', ['5', -1, 0, 1.5, true, {}]);
  field(chat, 'max_tokens', [3000, 1e12], 400, 'context_length_exceeded');
  field(chat, 'max_completion_tokens', ['5', 0, -3]);
  field(chat, 'max_completion_tokens', [99999], 400, 'context_length_exceeded');
  field(chat, 'stop', [5, [5], ['a', 'b', 'c', 'd', 'e'], '', [''], 'x'.repeat(2000), {}, [['a']]]);
  field(chat, 'n', [0, -1, 1.5, '1', 1e9, true, 17, 128]);
  field(chat, 'stream_options', [{ include_usage: 'yes' }, 'x', 5]);
  field(chat, 'stream_options', [{ include_usage: true }]);
  field(chat, 'logprobs', ['x', 1]);
  field(chat, 'top_logprobs', [21, -1, 'x']);
  // top_logprobs without logprobs: true
  field(chat, 'top_logprobs', [3]);
  field(chat, 'presence_penalty', [3, 'x']);
  field(chat, 'frequency_penalty', [-2.5, []]);
  field(chat, 'logit_bias', ['x', 5]);
  field(chat, 'logit_bias', [{ a: 5 }, { '-1': 5 }, { '1': 101 }, { '1': 'x' }, { '99999999': 1 }]);
  field(chat, 'response_format', ['json', 5, {}, { type: 'xml' }, { type: 'json_schema' }, { type: 'json_schema', json_schema: { name: 'x', schema: 's' } }]);
  field(chat, 'min_p', [2, 'x']);
  field(chat, 'repetition_penalty', [0, -1]);
  field(chat, 'include_reasoning', ['no']);
  field(chat, 'chat_template_kwargs', [5, { reasoning_effort: 'extreme' }]);

  const completions = '/completions';
  without(completions, 'prompt');
  field(completions, 'prompt', [5, {}, null, true, [], [[1, 2]], [1, 'a'], [-1], [999999999], ['a', 'b'], [1.5], '']);
  field(completions, 'suffix', ['x'], 400, 'unsupported_parameter');
  field(completions, 'best_of', [2], 400, 'unsupported_parameter');
  field(completions, 'best_of', [0, 'x']);
  field(completions, 'echo', ['yes', 1]);
  field(completions, 'logprobs', [true, 9]);
  field(completions, 'max_tokens', [0, -5, '3']);
  field(completions, 'max_tokens', [5000], 400, 'context_length_exceeded');
  field(completions, 'n', [0, 17]);
  field(completions, 'stop', [5, ['a', 'b', 'c', 'd', 'e']]);

  const responses = '/responses';
  without(responses, 'input');
  field(responses, 'input', [5, [], [5], {}, null, true]);
  const item = (it: unknown) => ({ ...responsesBase, input: [it] });
  const badItems: unknown[] = [
    { type: 'bogus' },
    { role: 'robot', content: 'x' },
    { type: 'function_call_output', call_id: 'never', output: 'y' },
    { type: 'function_call_output', output: 'y' },
    { type: 'function_call', name: 'bad name', call_id: 'c', arguments: '{}' },
    { type: 'function_call', name: 'f', arguments: '{}' },
    { role: 'user', content: 5 },
    { role: 'user', content: [{ type: 'input_image', image_url: 'https://x/y.png' }] },
    { role: 'user', content: [{ type: 'input_text' }] },
    { type: 'reasoning', content: [{ type: 'reasoning_text', text: 5 }] },
    {},
  ];
  badItems.forEach((it, i) => add(responses, `input item #${i} ${JSON.stringify(it).slice(0, 50)}`, item(it)));
  field(responses, 'tools', [
    'x', [{ type: 'teleport' }], [{ type: 'function' }], [{ name: 'f' }], [{ type: 'namespace', name: 'n' }], [{ type: 'namespace', name: 'functions', tools: [] }],
    [{ type: 'function', name: 'f', parameters: 'x' }], [{ type: 'function', name: 'f', parameters: { type: 'nope' } }],
    [{ type: 'function', name: 'bad name' }], [{ type: 'function', name: 'f' }, { type: 'function', name: 'f' }],
  ]);
  field(responses, 'previous_response_id', ['resp_unknown'], 400, 'previous_response_not_found');
  field(responses, 'previous_response_id', [5]);
  field(responses, 'background', [true], 400, 'unsupported_parameter');
  field(responses, 'reasoning', ['high', { effort: 'extreme' }]);
  field(responses, 'max_output_tokens', [0, 'x', 1.5]);
  field(responses, 'max_output_tokens', [99999], 400, 'context_length_exceeded');
  field(responses, 'text', ['x', { format: { type: 'xml' } }, { format: 'json' }]);
  field(responses, 'truncation', ['sometimes', 5]);
  field(responses, 'top_logprobs', [21, -1, 'x']);
  field(responses, 'instructions', [5, {}]);
  field(responses, 'tool_choice', ['required', { type: 'function', name: 'f' }]);
  field(responses, 'text', [{ format: { type: 'json_schema', name: 'x', schema: { type: 'string', pattern: '(?<=a)b' } } }], 400, 'unsupported_schema');
  field(responses, 'tool_choice', ['sometimes', 7]);
  field(responses, 'tool_choice', [{ type: 'web_search' }], 400, 'unsupported_parameter');

  // A prompt longer than the context, with and without a completion budget.
  const long = 'hello '.repeat(3000);
  add(chat, 'prompt over the context', { model: MODEL, messages: [{ role: 'user', content: long }] }, 400, 'context_length_exceeded');
  add(chat, 'prompt over the context with max_tokens', { ...chatBase, messages: [{ role: 'user', content: long }] }, 400, 'context_length_exceeded');
  add(completions, 'raw prompt over the context', { model: MODEL, prompt: long }, 400, 'context_length_exceeded');
  add(responses, 'input over the context', { model: MODEL, input: long }, 400, 'context_length_exceeded');

  // Transport-level faults.
  cases.push({ name: 'body over the 4 MiB limit', route: chat, body: { ...chatBase, messages: [{ role: 'user', content: 'x'.repeat(5 * 1024 * 1024) }] }, status: 413 });
  cases.push({ name: 'XML content type', route: chat, body: '<xml/>', contentType: 'application/xml', status: 415 });
  cases.push({ name: 'text/plain body', route: chat, body: JSON.stringify(chatBase), contentType: 'text/plain', status: 400 });
  cases.push({ name: 'form body', route: chat, body: 'a=1', contentType: 'application/x-www-form-urlencoded', status: 415 });
  for (const [method, route] of [['GET', chat], ['PUT', '/models'], ['DELETE', '/responses'], ['POST', '/embeddings'], ['POST', '/images/generations'], ['GET', '/nope'], ['POST', '/../health']]) {
    cases.push({ name: `${method} ${route}`, route: route!, method, body: method === 'GET' ? undefined : chatBase, status: 404 });
  }
  cases.push({ name: 'GET unknown stored response', route: '/responses/resp_missing', method: 'GET', body: undefined, status: 404 });
  cases.push({ name: 'GET unknown model', route: '/models/gpt-4o', method: 'GET', body: undefined, status: 404, code: 'model_not_found' });
  cases.push({ name: 'GET model with a broken escape', route: '/models/%E0%A4%A', method: 'GET', body: undefined, status: 400, code: 'invalid_url' });
  cases.push({ name: 'POST with a broken escape in the path', route: '/chat/completions%', body: chatBase, status: 400, code: 'invalid_url' });
  return cases;
}

async function send(c: BadRequest): Promise<{ status: number; text: string; contentType: string | null }> {
  const headers: Record<string, string> = {};
  let body: string | undefined;
  if (c.body !== undefined) {
    body = typeof c.body === 'string' ? c.body : JSON.stringify(c.body);
    headers['content-type'] = c.contentType ?? 'application/json';
  }
  const res = await fetch(`${s.baseURL}${c.route}`, { method: c.method ?? 'POST', headers, body });
  return { status: res.status, text: await res.text(), contentType: res.headers.get('content-type') };
}

describe('malformed requests', () => {
  it('each of 200+ malformed requests gets the right 4xx with an OpenAI-shaped error; the server keeps serving', async () => {
    const cases = battery();
    expect(cases.length).toBeGreaterThanOrEqual(200);
    const failures: string[] = [];
    // A few at a time: none of them should reach the engine.
    for (let i = 0; i < cases.length; i += 16) {
      await Promise.all(
        cases.slice(i, i + 16).map(async (c) => {
          const r = await send(c);
          let json: { error?: Record<string, unknown> } | undefined;
          try {
            json = JSON.parse(r.text) as typeof json;
          } catch {
            json = undefined;
          }
          const e = json?.error;
          const problems = [
            r.status !== c.status && `status ${r.status}, want ${c.status}`,
            !r.contentType?.startsWith('application/json') && `content-type ${r.contentType}`,
            !e && 'no error object',
            e && (typeof e['message'] !== 'string' || e['message'] === '') && 'no message',
            e && typeof e['type'] !== 'string' && 'no type',
            e && !(e['param'] === null || typeof e['param'] === 'string') && 'bad param',
            e && !(e['code'] === null || typeof e['code'] === 'string') && 'bad code',
            e && Object.keys(e).sort().join() !== 'code,message,param,type' && `extra keys ${Object.keys(e)}`,
            /\n\s+at /.test(r.text) && 'stack trace leaked',
            c.code !== undefined && e?.['code'] !== c.code && `code ${String(e?.['code'])}, want ${c.code}`,
          ].filter(Boolean);
          if (problems.length) failures.push(`${c.route} ${c.name}: ${problems.join('; ')} — ${r.text.slice(0, 200)}`);
        }),
      );
    }
    expect(failures).toEqual([]);

    // Still serving, and nothing above was a 500.
    const ok = await s.client.chat.completions.create({ ...chatBase, messages: [{ role: 'user', content: 'Still there?' }] } as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming);
    expect(ok.usage!.completion_tokens).toBe(1);
    const metrics = await (await fetch(s.baseURL.replace('/v1', '/metrics'))).text();
    expect(metrics).not.toMatch(/status="5\d\d"/);
    expect(s.model.queue.queueDepth).toBe(0);
  });

  it('the SDK surfaces them as its error classes', async () => {
    await expect(s.client.chat.completions.create({ ...chatBase, model: 'gpt-4o' } as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming)).rejects.toMatchObject({
      status: 404,
      code: 'model_not_found',
    });
    const bad = await s.client.chat.completions
      .create({ ...chatBase, messages: [{ role: 'tool', content: 'x' }] } as unknown as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming)
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect((bad as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('messages[0].tool_call_id');
  });
});

describe('oversized bodies', () => {
  /**
   * An HTTP/1.1 client that writes the whole request before it reads (as Python's http.client and
   * httpx do), then sends a second request on the same connection.
   */
  function sendAllThenRead(url: string, body: Buffer): Promise<{ first: string; second: string }> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(port), hostname);
      let text = '';
      socket.on('error', (e) => reject(new Error(`${(e as NodeJS.ErrnoException).code} after reading ${JSON.stringify(text)}`)));
      socket.on('data', (d: Buffer) => {
        text += d.toString();
        const responses = text.split(/(?=HTTP\/1\.1 )/);
        if (responses.length === 2 && responses[1]!.includes('"status":"ok"')) {
          socket.end();
          resolve({ first: responses[0]!, second: responses[1]! });
        }
      });
      socket.pause();
      socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`);
      socket.write(body, () => {
        socket.write(`GET /health HTTP/1.1\r\nhost: ${hostname}\r\n\r\n`);
        socket.resume();
      });
    });
  }

  it('a 10 MB body gets its JSON 413, read by clients that send all of it first; the connection stays usable', async () => {
    const body = Buffer.from(JSON.stringify({ ...chatBase, messages: [{ role: 'user', content: 'x'.repeat(10 * 1024 * 1024) }] }));
    const { first, second } = await sendAllThenRead(s.baseURL, body);
    expect(first).toMatch(/^HTTP\/1\.1 413 /);
    expect(JSON.parse(first.slice(first.indexOf('\r\n\r\n') + 4))).toEqual({
      error: { message: 'The request body is too large.', type: 'invalid_request_error', param: null, code: 'request_too_large' },
    });
    expect(second).toMatch(/^HTTP\/1\.1 200 /);
    // The official client gets it as an APIError with the status and code.
    const err = await s.client.chat.completions.create({ ...chatBase, messages: [{ role: 'user', content: 'x'.repeat(10 * 1024 * 1024) }] } as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err).toMatchObject({ status: 413, code: 'request_too_large' });
  });
});

describe('gpt-oss compatibility-test requests', () => {
  // As compatibility-test/runCase.ts builds them: the case's input as the user turn and only the
  // case's tool, sent through both the Chat Completions and the Responses API.
  const tools = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'test', 'harmony', 'fixtures', 'compat-tools.json'), 'utf8')) as { tools: OpenAI.Chat.Completions.ChatCompletionTool[] }).tools;
  const toolNamed = (name: string) => tools.find((t) => t.type === 'function' && t.function.name === name) as OpenAI.Chat.Completions.ChatCompletionFunctionTool;
  const cases = readFileSync(path.join(SHARED, 'harmony', 'compat-cases.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { tool_name: string; input: string; expected_arguments: string });

  it('all 30 cases, with their tool, are accepted by chat completions and responses and answered in shape', async () => {
    expect(cases).toHaveLength(30);
    await Promise.all(
      cases.map(async (c, i) => {
        const tool = toolNamed(c.tool_name);
        expect(tool).toBeDefined();
        const chat = { model: MODEL, messages: [{ role: 'user' as const, content: c.input }], tools: [tool], max_tokens: 1, seed: i };
        const promptTokens = renderChatCompletion(chat, { tokenizer, currentDate: CURRENT_DATE }).tokenIds.length;
        if (i % 2 === 0) {
          const r = await s.client.chat.completions.create(chat);
          expect(r.choices[0]!.message.role).toBe('assistant');
          expect(['stop', 'length', 'tool_calls']).toContain(r.choices[0]!.finish_reason);
          expect(r.usage).toMatchObject({ prompt_tokens: promptTokens, completion_tokens: 1, total_tokens: promptTokens + 1 });
        } else {
          const stream = await s.client.chat.completions.create({ ...chat, stream: true, stream_options: { include_usage: true } });
          let usage: OpenAI.CompletionUsage | undefined;
          for await (const chunk of stream) usage = chunk.usage ?? usage;
          expect(usage).toMatchObject({ prompt_tokens: promptTokens, completion_tokens: 1 });
        }

        const fn = tool.function;
        const flat = { type: 'function' as const, name: fn.name, description: fn.description ?? null, parameters: fn.parameters ?? null, strict: false };
        const request = { model: MODEL, input: c.input, tools: [flat], max_output_tokens: 1, parallel_tool_calls: true, include: [], store: true };
        const final = i % 2 === 1 ? await s.client.responses.create(request) : await s.client.responses.stream(request).finalResponse();
        expect(['completed', 'incomplete']).toContain(final.status);
        expect(final.usage!.output_tokens).toBe(1);
        for (const item of final.output) expect(['reasoning', 'message', 'function_call']).toContain(item.type);
      }),
    );
  });
});
