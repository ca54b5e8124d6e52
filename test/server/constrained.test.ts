// Structured output on the real server: synthetic:tiny has random weights, so every valid answer
// below is the constraint's doing. response_format / text.format force the final message to be
// JSON valid against the schema; tool_choice "required" or named forces a commentary call with
// valid arguments. Reasoning is capped at 2 tokens and the JSON is kept short (bounds) so the
// lavapipe decode stays quick.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { constrainedReasoningTokens } from '../../src/server/constraints.js';
import { MODEL, post, REPO_ROOT, SHARED, startServer, type TestServer } from './helpers.js';

let s: TestServer;
beforeAll(async () => {
  const t0 = performance.now();
  s = await startServer({
    constrainedReasoningTokens: 2,
    constraintBounds: { maxStringChars: 6, maxKeyChars: 6, maxWhitespace: 0, maxItems: 2, maxProperties: 2, maxNumberDigits: 3, maxDepth: 3 },
  });
  // The vocabulary index was built during the load: /health is 200 and a first request is quick.
  expect((await fetch(s.baseURL.replace('/v1', '/health'))).status).toBe(200);
  console.log(`server ready in ${Math.round(performance.now() - t0)} ms`);
});
afterAll(async () => {
  await s?.close();
});

const ajv = new Ajv({ strict: false });
/** The SDK's types have no `seed` for Responses; the server takes it. */
type StreamParams = Parameters<OpenAI['responses']['stream']>[0];
const masks: Array<{ maskMs: number; masks: number }> = [];
function noteMaskCost(): void {
  const g = s.app.gptOss.lastGeneration;
  if (g?.maskMs !== undefined && g.masks) masks.push({ maskMs: g.maskMs, masks: g.masks });
}
afterAll(() => {
  const ms = masks.reduce((a, m) => a + m.maskMs, 0);
  const n = masks.reduce((a, m) => a + m.masks, 0);
  if (n) console.log(`mask cost: ${n} masks in ${masks.length} generations, ${(ms / n).toFixed(2)} ms per mask on average`);
});

const weather = {
  type: 'object',
  properties: {
    city: { type: 'string' },
    temp: { type: 'integer', minimum: -50, maximum: 60 },
    sky: { enum: ['sun', 'rain'] },
  },
  required: ['city', 'temp', 'sky'],
  additionalProperties: false,
} as const;
const messages = [{ role: 'user' as const, content: 'Weather in Paris as JSON?' }];

describe('response_format', () => {
  it('json_schema: the content parses and validates (non-streaming and streaming)', async () => {
    const response_format = { type: 'json_schema' as const, json_schema: { name: 'weather', schema: weather, strict: true } };
    const r = await s.client.chat.completions.create({ model: MODEL, messages, response_format, max_tokens: 80, seed: 1 });
    noteMaskCost();
    const choice = r.choices[0]!;
    expect(choice.finish_reason, JSON.stringify(choice.message)).toBe('stop');
    const value = JSON.parse(choice.message.content!);
    expect(ajv.validate(weather, value), choice.message.content!).toBe(true);
    expect(choice.message.tool_calls).toBeUndefined();
    // At most 2 free reasoning tokens, plus the analysis header (its "analysis" may be split into
    // up to 8 tokens) and <|end|>.
    expect(r.usage!.completion_tokens_details!.reasoning_tokens).toBeLessThanOrEqual(2 + 2 + 8 + 1);

    const stream = await s.client.chat.completions.create({ model: MODEL, messages, response_format, max_tokens: 80, seed: 2, temperature: 0.7, stream: true });
    let content = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    noteMaskCost();
    expect(finish).toBe('stop');
    expect(ajv.validate(weather, JSON.parse(content)), content).toBe(true);
  });

  it('json_object: the content is a JSON object', async () => {
    for (const seed of [3, 4]) {
      const r = await s.client.chat.completions.create({ model: MODEL, messages, response_format: { type: 'json_object' }, max_tokens: 120, seed });
      noteMaskCost();
      const content = r.choices[0]!.message.content!;
      expect(r.choices[0]!.finish_reason, content).toBe('stop');
      const value = JSON.parse(content);
      expect(typeof value === 'object' && value !== null && !Array.isArray(value), content).toBe(true);
    }
  });

  it('Responses text.format json_schema: the output text validates (non-streaming and streaming)', async () => {
    const request = {
      model: MODEL,
      input: 'Weather in Paris as JSON?',
      text: { format: { type: 'json_schema' as const, name: 'weather', schema: weather as unknown as Record<string, unknown>, strict: true } },
      max_output_tokens: 80,
      seed: 5,
    } as OpenAI.Responses.ResponseCreateParamsNonStreaming;
    const r = await s.client.responses.create(request);
    noteMaskCost();
    expect(r.status).toBe('completed');
    expect(ajv.validate(weather, JSON.parse(r.output_text)), r.output_text).toBe(true);
    expect(r.text?.format).toMatchObject({ type: 'json_schema', name: 'weather' });

    const streamed = await s.client.responses.stream({ ...request, seed: 6 } as unknown as StreamParams).finalResponse();
    noteMaskCost();
    expect(streamed.status).toBe('completed');
    expect(ajv.validate(weather, JSON.parse(streamed.output_text)), streamed.output_text).toBe(true);

    const obj = await s.client.responses.create({ model: MODEL, input: 'JSON please', text: { format: { type: 'json_object' } }, max_output_tokens: 120, seed: 7 } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    noteMaskCost();
    const value = JSON.parse(obj.output_text);
    expect(typeof value === 'object' && value !== null && !Array.isArray(value), obj.output_text).toBe(true);
  });
});

describe('tool_choice', () => {
  const tools = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'test', 'harmony', 'fixtures', 'compat-tools.json'), 'utf8')) as { tools: OpenAI.Chat.Completions.ChatCompletionFunctionTool[] }).tools;
  const toolNamed = (name: string) => tools.find((t) => t.function.name === name)!;
  const cases = readFileSync(path.join(SHARED, 'harmony', 'compat-cases.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { tool_name: string; input: string });
  const validArgs = (name: string, args: string) => {
    const schema = toolNamed(name).function.parameters!;
    return ajv.validate(schema, JSON.parse(args));
  };

  // 30 requests at once on a 16-sequence engine: the second half waits for the first half to
  // finish, which on a 2-core lavapipe machine can take longer than the client's default 120 s.
  const LONG_WAIT = { timeout: 480_000 };
  it('named function, every compat case (Chat Completions; streaming for odd cases): a valid call to that tool', async () => {
    expect(cases).toHaveLength(30);
    const failures: string[] = [];
    // all at once: the engine batches them (each with its own mask per step)
    await Promise.all(cases.map(async (c, i) => {
      const tool = toolNamed(c.tool_name);
      const request = {
        model: MODEL,
        messages: [{ role: 'user' as const, content: c.input }],
        tools: [tool],
        tool_choice: { type: 'function' as const, function: { name: c.tool_name } },
        max_tokens: 100,
        seed: i,
      };
      let finish: string | null;
      let calls: Array<{ name: string; arguments: string }>;
      if (i % 2 === 0) {
        const r = await s.client.chat.completions.create(request, LONG_WAIT);
        finish = r.choices[0]!.finish_reason;
        calls = (r.choices[0]!.message.tool_calls ?? []).map((t) => (t as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall).function);
        expect(r.choices[0]!.message.content).toBeNull();
      } else {
        const stream = await s.client.chat.completions.create({ ...request, stream: true }, LONG_WAIT);
        finish = null;
        calls = [];
        for await (const chunk of stream) {
          const d = chunk.choices[0];
          finish = d?.finish_reason ?? finish;
          for (const t of d?.delta.tool_calls ?? []) {
            if (t.function?.name) calls[t.index] = { name: t.function.name, arguments: '' };
            calls[t.index]!.arguments += t.function?.arguments ?? '';
          }
        }
      }
      noteMaskCost();
      const problem =
        finish !== 'tool_calls' ? `finish ${finish}` : calls.length !== 1 ? `${calls.length} calls` : calls[0]!.name !== c.tool_name ? `called ${calls[0]!.name}` : !validArgs(c.tool_name, calls[0]!.arguments) ? `invalid arguments ${calls[0]!.arguments}` : null;
      if (problem) failures.push(`case ${i} (${c.tool_name}): ${problem}`);
    }));
    expect(failures).toEqual([]);
  });

  it('"required" with every compat tool offered (a subset of the cases): a valid call to one of them; Responses too', async () => {
    const failures: string[] = [];
    await Promise.all(cases.map(async (c, i) => {
      if (i % 6 !== 0) return;
      const r = await s.client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: c.input }], tools, tool_choice: 'required', max_tokens: 100, seed: 100 + i });
      noteMaskCost();
      const call = (r.choices[0]!.message.tool_calls ?? [])[0] as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall | undefined;
      if (r.choices[0]!.finish_reason !== 'tool_calls' || !call) failures.push(`case ${i}: no call (${r.choices[0]!.finish_reason})`);
      else if (!tools.some((t) => t.function.name === call.function.name)) failures.push(`case ${i}: called ${call.function.name}`);
      else if (!validArgs(call.function.name, call.function.arguments)) failures.push(`case ${i}: invalid arguments ${call.function.arguments}`);
    }));
    expect(failures).toEqual([]);

    // Responses: the flat tool shape, "required" and a named function; streaming and not.
    const flat = tools.map((t) => ({ type: 'function' as const, name: t.function.name, description: t.function.description ?? null, parameters: t.function.parameters ?? null, strict: false }));
    for (const [j, tool_choice] of (['required', { type: 'function' as const, name: 'get_weather' }] as const).entries()) {
      const request = { model: MODEL, input: cases[j]!.input, tools: flat, tool_choice, max_output_tokens: 100, seed: 200 + j } as OpenAI.Responses.ResponseCreateParamsNonStreaming;
      const r = j === 0 ? await s.client.responses.create(request) : await s.client.responses.stream(request as unknown as StreamParams).finalResponse();
      noteMaskCost();
      expect(r.status).toBe('completed');
      const calls = r.output.filter((o) => o.type === 'function_call') as OpenAI.Responses.ResponseFunctionToolCall[];
      expect(calls, JSON.stringify(r.output)).toHaveLength(1);
      if (j === 1) expect(calls[0]!.name).toBe('get_weather');
      expect(validArgs(calls[0]!.name, calls[0]!.arguments), calls[0]!.arguments).toBe(true);
    }
  });
});

describe('refused with a 400', () => {
  const weatherTool = (parameters: unknown) => [{ type: 'function', function: { name: 'get_weather', parameters } }];
  const base = { model: MODEL, messages, max_tokens: 1 };
  const cases: Array<{ name: string; route: string; body: Record<string, unknown>; param: string; keyword?: string }> = [
    ...(['pattern', 'format', 'oneOf'] as const).map((keyword) => ({
      name: `response_format with ${keyword}`,
      route: '/chat/completions',
      body: {
        ...base,
        response_format: {
          type: 'json_schema',
          json_schema: {
            name: 'x',
            schema: {
              type: 'object',
              properties: { a: keyword === 'oneOf' ? { oneOf: [{ type: 'object' }, { type: 'object', properties: { b: { type: 'string' } } }] } : { type: 'string', maxLength: 2, [keyword]: keyword === 'format' ? 'email' : '^(?=a)a+$' } },
            },
          },
        },
      },
      param: 'response_format.json_schema.schema',
      keyword,
    })),
    {
      name: 'text.format with pattern',
      route: '/responses',
      body: { model: MODEL, input: 'hi', max_output_tokens: 1, text: { format: { type: 'json_schema', name: 'x', schema: { type: 'string', pattern: '(a)\\1' } } } },
      param: 'text.format.schema',
      keyword: 'pattern',
    },
    {
      name: 'named tool with format',
      route: '/chat/completions',
      body: { ...base, tools: weatherTool({ type: 'object', properties: { d: { type: 'string', format: 'date', maxLength: 9 } } }), tool_choice: { type: 'function', function: { name: 'get_weather' } } },
      param: 'tools[0].function.parameters',
      keyword: 'format',
    },
    {
      name: 'required, one tool with oneOf (Responses)',
      route: '/responses',
      body: {
        model: MODEL,
        input: 'hi',
        max_output_tokens: 1,
        tools: [
          { type: 'function', name: 'ok', parameters: { type: 'object', properties: {} } },
          { type: 'function', name: 'bad', parameters: { type: 'object', properties: { a: { oneOf: [{ type: 'integer' }, { type: 'number' }] } } } },
        ],
        tool_choice: 'required',
      },
      param: 'tools[1].parameters',
      keyword: 'oneOf',
    },
    { name: 'named tool not among the tools', route: '/chat/completions', body: { ...base, tools: weatherTool({ type: 'object' }), tool_choice: { type: 'function', function: { name: 'nope' } } }, param: 'tool_choice' },
    { name: 'named tool not among the tools (Responses)', route: '/responses', body: { model: MODEL, input: 'hi', tools: [{ type: 'function', name: 'f' }], tool_choice: { type: 'function', name: 'g' } }, param: 'tool_choice' },
    { name: 'required without tools', route: '/chat/completions', body: { ...base, tool_choice: 'required' }, param: 'tool_choice' },
  ];

  it.each(cases)('$name', async (c) => {
    const r = await post(s.baseURL, c.route, c.body);
    expect(r.status, JSON.stringify(r.json)).toBe(400);
    expect(r.json.error.type).toBe('invalid_request_error');
    expect(r.json.error.param).toBe(c.param);
    if (c.keyword) expect(r.json.error.message).toContain(`"${c.keyword}"`);
  });

  it('an unsupported schema on a tool that is not forced is fine', async () => {
    const r = await s.client.chat.completions.create({
      ...base,
      tools: [
        { type: 'function', function: { name: 'ok', parameters: { type: 'object', properties: {} } } },
        { type: 'function', function: { name: 'free', parameters: { type: 'object', properties: { d: { type: 'string', pattern: '^(?=a)$' } } } } },
      ],
      tool_choice: { type: 'function', function: { name: 'ok' } },
      max_tokens: 1,
    });
    expect(r.usage!.completion_tokens).toBe(1);
    const auto = await s.client.chat.completions.create({ ...base, tools: weatherTool({ type: 'string', pattern: '\\bx' }) as OpenAI.Chat.Completions.ChatCompletionTool[] });
    expect(auto.usage!.completion_tokens).toBe(1);
  });
});

describe('settings', () => {
  it('the reasoning cap: option, else GPT_OSS_CONSTRAINED_REASONING_TOKENS, else 1024', () => {
    expect(constrainedReasoningTokens(undefined, {})).toBe(1024);
    expect(constrainedReasoningTokens(undefined, { GPT_OSS_CONSTRAINED_REASONING_TOKENS: '64' })).toBe(64);
    expect(constrainedReasoningTokens(0, { GPT_OSS_CONSTRAINED_REASONING_TOKENS: '64' })).toBe(0);
    expect(() => constrainedReasoningTokens(undefined, { GPT_OSS_CONSTRAINED_REASONING_TOKENS: 'lots' })).toThrow(/GPT_OSS_CONSTRAINED_REASONING_TOKENS/);
    expect(() => constrainedReasoningTokens(-1)).toThrow();
  });
});
