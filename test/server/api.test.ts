// The endpoints through the official `openai` client, on the real server serving synthetic:tiny.
// Random weights make the text gibberish, so the checks are on shape, on usage counted against
// the tokenizer, and on streaming and non-streaming agreeing for the same seed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { HARMONY_TOKENS, renderChatCompletion, renderRawPrompt, renderResponsesInput } from '../../src/harmony/index.js';
import { stopTokens } from '../../src/server/generation.js';
import { AssistantOutput } from '../../src/server/assistant-output.js';
import type { HarmonyTokenizer } from '../../src/tokenizer/index.js';
import { CURRENT_DATE, FIXED_LENGTH, MODEL, post, startServer, type TestServer } from './helpers.js';

let s: TestServer;
let tokenizer: HarmonyTokenizer;
beforeAll(async () => {
  // Forced output (a named tool_choice below) reasons at most 8 tokens: random weights never end
  // their reasoning themselves, so this keeps the forced call short.
  s = await startServer({ constrainedReasoningTokens: 8 });
  tokenizer = s.model.host.ready().tokenizer;
});
afterAll(async () => {
  await s?.close();
});

const promptLength = (request: object) => renderChatCompletion(request, { tokenizer, currentDate: CURRENT_DATE }).tokenIds.length;

const chatRequest = {
  model: MODEL,
  messages: [
    { role: 'system' as const, content: 'Answer briefly.' },
    { role: 'user' as const, content: 'Say hello.' },
  ],
  max_tokens: 6,
  seed: 42,
  ...FIXED_LENGTH,
};

describe('models and health', () => {
  it('GET /health is 200 with the model ready; /v1/models lists it', async () => {
    const health = await fetch(s.baseURL.replace('/v1', '/health'));
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', model: MODEL });
    const models = [];
    for await (const m of s.client.models.list()) models.push(m);
    expect(models).toEqual([expect.objectContaining({ id: MODEL, object: 'model', owned_by: expect.any(String), created: expect.any(Number) })]);
    expect((await s.client.models.retrieve(MODEL)).id).toBe(MODEL);
    await expect(s.client.models.retrieve('gpt-4o')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe('chat completions', () => {
  let plain: OpenAI.Chat.Completions.ChatCompletion;

  it('non-streaming: message, finish reason and usage from the rendered prompt and the generated tokens', async () => {
    plain = await s.client.chat.completions.create(chatRequest);
    expect(plain.id).toMatch(/^chatcmpl-/);
    expect(plain.object).toBe('chat.completion');
    expect(plain.model).toBe(MODEL);
    expect(plain.choices).toHaveLength(1);
    const choice = plain.choices[0]!;
    expect(choice.message.role).toBe('assistant');
    expect(typeof choice.message.content).toBe('string');
    expect(['stop', 'length', 'tool_calls']).toContain(choice.finish_reason);
    const usage = plain.usage!;
    expect(usage.prompt_tokens).toBe(promptLength(chatRequest));
    // A random model never samples <|return|> or <|call|> in 6 tokens: it runs to the limit.
    expect(choice.finish_reason).toBe('length');
    expect(usage.completion_tokens).toBe(6);
    expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
  });

  it('streaming: the chunks add up to the same answer and usage (same seed)', async () => {
    const stream = await s.client.chat.completions.create({ ...chatRequest, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    for (const c of chunks) {
      expect(c.object).toBe('chat.completion.chunk');
      expect(c.id).toBe(chunks[0]!.id);
    }
    const usageChunk = chunks.at(-1)!;
    expect(usageChunk.choices).toEqual([]);
    // the same prompt again: the prefix cache serves its whole pages (the rest of usage is the same)
    const { prompt_tokens_details: cached, ...usage } = usageChunk.usage!;
    const { prompt_tokens_details: _, ...plainUsage } = plain.usage!;
    expect(usage).toEqual(plainUsage);
    expect(cached!.cached_tokens).toBe(Math.floor((plain.usage!.prompt_tokens - 1) / 32) * 32);
    const body = chunks.slice(0, -1);
    const content = body.map((c) => c.choices[0]!.delta.content ?? '').join('');
    const reasoning = body.map((c) => (c.choices[0]!.delta as { reasoning?: string }).reasoning ?? '').join('');
    expect(content).toBe(plain.choices[0]!.message.content);
    expect(reasoning).toBe((plain.choices[0]!.message as { reasoning?: string | null }).reasoning ?? '');
    expect(body.at(-1)!.choices[0]!.finish_reason).toBe(plain.choices[0]!.finish_reason);
    expect(body.slice(0, -1).every((c) => c.choices[0]!.finish_reason === null)).toBe(true);
  });

  it('streaming is token by token: one delta per token that adds text, each sent as it is generated', async () => {
    const { engine } = s.model.host.ready();
    // Synthetic models end an answer after ~30 tokens on average, and a message that ends
    // (<|end|> too) is followed by a new header, held back: the first seed from 11 whose 24
    // tokens are one message, for this prompt. Its tokens are what the server will sample.
    const oneMessage = async (promptIds: number[]) => {
      for (let seed = 11; seed < 60; seed++) {
        const r = await engine.generate(promptIds, { maxTokens: 24, temperature: 1, topP: 1, topK: 0, seed, stopTokens: stopTokens(engine) });
        if (r.finishReason === 'length' && !r.tokens.includes(HARMONY_TOKENS.end)) return { seed, tokens: r.tokens };
      }
      throw new Error('no seed in [11, 60) samples 24 tokens of one message');
    };
    const base = { ...chatRequest, max_tokens: 24 };
    const promptIds = renderChatCompletion(base, { tokenizer, currentDate: CURRENT_DATE }).tokenIds;
    const { seed, tokens } = await oneMessage(promptIds);
    const request = { ...base, seed };
    const output = new AssistantOutput({ tokenizer, tools: null });
    const expected = tokens.flatMap((t) => output.push(t).filter((e) => e.type === 'text_delta' || e.type === 'reasoning_delta'));
    // Random weights write no header, so the first delta holds its first few words; then one per token.
    expect(expected.length).toBeGreaterThanOrEqual(tokens.length / 2);

    const stream = await s.client.chat.completions.create({ ...request, stream: true });
    const arrivals: Array<{ at: number; text: string }> = [];
    for await (const c of stream) {
      const d = c.choices[0]?.delta as { content?: string; reasoning?: string } | undefined;
      const text = (d?.content ?? '') + (d?.reasoning ?? '');
      if (text !== '') arrivals.push({ at: performance.now(), text });
    }
    expect(arrivals.map((a) => a.text).join('')).toBe(expected.map((e) => e.text).join(''));
    expect(arrivals).toHaveLength(expected.length);
    // Spread over the generation: consecutive deltas arrive about a decode step apart (the
    // server's mean step time for this stream), not together: batched deltas come within
    // microseconds of each other.
    const spread = (deltas: Array<{ at: number }>) => {
      const g = s.app.gptOss.lastGeneration!;
      const stepMs = g.decodeMs / (g.tokens - 1);
      const gaps = deltas.slice(1).map((a, i) => a.at - deltas[i]!.at);
      return { stepMs, gaps, apart: gaps.filter((gap) => gap > 0.2 * stepMs).length / gaps.length };
    };
    const chat = spread(arrivals);
    expect(chat.apart, `gaps ${chat.gaps.map((g) => g.toFixed(1))} ms, decode step ${chat.stepMs.toFixed(1)} ms`).toBeGreaterThanOrEqual(0.75);

    // The Responses stream sends its deltas the same way.
    const input = request.messages.map((m) => ({ role: m.role, content: m.content }));
    const responsesPrompt = renderResponsesInput({ model: MODEL, input, max_output_tokens: 24, reasoning: {} }, { tokenizer, currentDate: CURRENT_DATE }).tokenIds;
    const picked = await oneMessage(responsesPrompt);
    const events = await s.client.responses.create({ model: MODEL, input, max_output_tokens: 24, seed: picked.seed, stream: true, ...FIXED_LENGTH } as OpenAI.Responses.ResponseCreateParamsStreaming);
    const deltas: Array<{ at: number; text: string }> = [];
    let inputTokens = 0;
    for await (const e of events) {
      if (e.type === 'response.output_text.delta' || e.type === 'response.reasoning_text.delta') deltas.push({ at: performance.now(), text: e.delta });
      if (e.type === 'response.incomplete' || e.type === 'response.completed') inputTokens = e.response.usage!.input_tokens;
    }
    // the prompt rendered here is the server's
    expect(inputTokens).toBe(responsesPrompt.length);
    expect(deltas.length).toBeGreaterThanOrEqual(s.app.gptOss.lastGeneration!.tokens / 2);
    const responses = spread(deltas);
    expect(responses.apart, `gaps ${responses.gaps.map((g) => g.toFixed(1))} ms, decode step ${responses.stepMs.toFixed(1)} ms`).toBeGreaterThanOrEqual(0.75);
  });

  it('stop strings cut the answer before the first match, streaming or not', async () => {
    const full = plain.choices[0]!.message.content!;
    expect(full.length).toBeGreaterThanOrEqual(4);
    const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 2);
    const want = full.slice(0, full.indexOf(stop));
    const cut = await s.client.chat.completions.create({ ...chatRequest, stop: [stop, '\u0000never'] });
    expect(cut.choices[0]!.message.content).toBe(want);
    expect(cut.choices[0]!.finish_reason).toBe('stop');
    const stream = await s.client.chat.completions.create({ ...chatRequest, stop, stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(want);
    expect(finish).toBe('stop');
  });

  it('tools, tool_choice, history with tool calls and reasoning, and max_completion_tokens are accepted', async () => {
    const request = {
      model: MODEL,
      max_completion_tokens: 3,
      ...FIXED_LENGTH,
      reasoning_effort: 'low' as const,
      tool_choice: 'auto' as const,
      tools: [
        {
          type: 'function' as const,
          function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
        },
      ],
      messages: [
        { role: 'developer' as const, content: 'Use tools when useful.' },
        { role: 'user' as const, content: 'Weather in Paris?' },
        {
          role: 'assistant' as const,
          content: null,
          reasoning: 'I should call the tool.',
          tool_calls: [{ id: 'call_1', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
        } as OpenAI.Chat.Completions.ChatCompletionAssistantMessageParam,
        { role: 'tool' as const, tool_call_id: 'call_1', content: '{"temp": 21}' },
      ],
    };
    const r = await s.client.chat.completions.create(request);
    expect(r.usage!.prompt_tokens).toBe(promptLength(request));
    expect(r.usage!.completion_tokens).toBe(3);
    // A named tool_choice forces the call (constrained decoding), so random weights still make
    // one; an enum keeps its arguments short, so it ends within the budget.
    const forced = await s.client.chat.completions.create({
      ...request,
      max_completion_tokens: 64,
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { enum: ['Paris', 'Rome'] } }, required: ['city'] } } }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    });
    const calls = forced.choices[0]!.message.tool_calls ?? [];
    expect(calls).toHaveLength(1);
    expect(forced.choices[0]!.finish_reason).toBe('tool_calls');
    for (const call of calls) {
      expect(call).toMatchObject({ id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather', arguments: expect.any(String) } });
      expect(['Paris', 'Rome']).toContain(JSON.parse((call as { function: { arguments: string } }).function.arguments).city);
    }
    // tool_choice none leaves the tools out of the prompt.
    const none = await s.client.chat.completions.create({ ...request, tool_choice: 'none', messages: [request.messages[1]!] });
    expect(none.usage!.prompt_tokens).toBe(promptLength({ messages: [request.messages[1]!], reasoning_effort: 'low' }));
    expect(none.choices[0]!.message.tool_calls ?? []).toEqual([]);
  });

  it('a prompt plus max_tokens over the context is a 400 that names both numbers', async () => {
    const err = await s.client.chat.completions.create({ ...chatRequest, max_tokens: 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    const e = err as InstanceType<typeof OpenAI.BadRequestError>;
    expect(e.message).toContain('2048');
    expect(e.message).toContain(`${promptLength(chatRequest)} in the prompt`);
    expect(e.message).toContain('5000');
    expect(e.code).toBe('context_length_exceeded');
  });
});

describe('completions', () => {
  const request = { model: MODEL, prompt: '<|start|>user<|message|>Count to three.<|end|><|start|>assistant', max_tokens: 5, seed: 7, ...FIXED_LENGTH };

  it('non-streaming and streaming agree; usage counts the raw prompt; echo prepends it', async () => {
    const plain = await s.client.completions.create(request);
    expect(plain.object).toBe('text_completion');
    expect(plain.usage!.prompt_tokens).toBe(renderRawPrompt(request.prompt, { tokenizer }).tokenIds.length);
    expect(plain.usage!.completion_tokens).toBe(5);
    expect(plain.choices[0]!.finish_reason).toBe('length');
    const stream = await s.client.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: unknown;
    for await (const c of stream) {
      text += c.choices[0]?.text ?? '';
      usage = c.usage ?? usage;
    }
    expect(text).toBe(plain.choices[0]!.text);
    expect(usage).toEqual(plain.usage);
    const echo = await s.client.completions.create({ ...request, echo: true });
    expect(echo.choices[0]!.text).toBe(request.prompt + plain.choices[0]!.text);
    // Token ids work as the prompt too.
    const ids = await s.client.completions.create({ ...request, prompt: renderRawPrompt(request.prompt, { tokenizer }).tokenIds });
    expect(ids.choices[0]!.text).toBe(plain.choices[0]!.text);
  });
});

describe('responses', () => {
  let first: OpenAI.Responses.Response;
  // A forced JSON answer: random weights then always write a message (after at most 8 reasoning
  // tokens), so the checks on message items and text events always run.
  const answerRequest = {
    model: MODEL,
    instructions: 'Be short.',
    input: 'Is the sky blue?',
    text: { format: { type: 'json_schema', name: 'answer', strict: true, schema: { type: 'object', properties: { answer: { enum: ['yes', 'no'] } }, required: ['answer'], additionalProperties: false } } },
    max_output_tokens: 64,
    seed: 3,
  } as OpenAI.Responses.ResponseCreateParamsNonStreaming;
  let answer: OpenAI.Responses.Response;

  it('non-streaming: output items, usage, stored for GET and previous_response_id', async () => {
    first = await s.client.responses.create({ model: MODEL, instructions: 'Be short.', input: 'Hi there', max_output_tokens: 4, seed: 3, ...FIXED_LENGTH } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    expect(first.id).toMatch(/^resp_/);
    expect(first.object).toBe('response');
    expect(first.status).toBe('incomplete');
    expect(first.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(first.usage!.input_tokens).toBe(
      renderResponsesInput({ instructions: 'Be short.', input: 'Hi there' }, { tokenizer, currentDate: CURRENT_DATE }).tokenIds.length,
    );
    expect(first.usage!.output_tokens).toBe(4);
    expect(first.output.length).toBeGreaterThanOrEqual(1);
    answer = await s.client.responses.create(answerRequest);
    expect(answer.status).toBe('completed');
    expect(JSON.parse(answer.output_text)).toEqual({ answer: expect.stringMatching(/^(yes|no)$/) });
    expect(answer.output.filter((i) => i.type === 'message')).toHaveLength(1);
    for (const r of [first, answer]) {
      for (const item of r.output) {
        expect(['message', 'reasoning', 'function_call']).toContain(item.type);
        if (item.type === 'message') expect(item.content[0]).toMatchObject({ type: 'output_text', text: expect.any(String) });
      }
      expect(r.output_text).toBe(r.output.flatMap((i) => (i.type === 'message' ? i.content.map((c) => (c as { text: string }).text) : [])).join(''));
    }
    expect((await s.client.responses.retrieve(first.id)).id).toBe(first.id);

    const second = await s.client.responses.create({ model: MODEL, previous_response_id: first.id, input: 'And then?', max_output_tokens: 2, ...FIXED_LENGTH });
    const history = [{ type: 'message', role: 'user', content: 'Hi there' }, ...first.output, { type: 'message', role: 'user', content: 'And then?' }];
    expect(second.usage!.input_tokens).toBe(renderResponsesInput({ input: history }, { tokenizer, currentDate: CURRENT_DATE }).tokenIds.length);
    expect(second.previous_response_id).toBe(first.id);

    // item_reference inputs (the AI SDK sends them in tool loops) stand for the stored items.
    const refs = first.output.map((i) => ({ type: 'item_reference' as const, id: i.id! }));
    const byReference = await s.client.responses.create({ model: MODEL, input: [{ role: 'user', content: 'Hi there' }, ...refs, { role: 'user', content: 'And then?' }], max_output_tokens: 2, ...FIXED_LENGTH });
    expect(byReference.usage!.input_tokens).toBe(second.usage!.input_tokens);
    const unknown = await s.client.responses.create({ model: MODEL, input: [{ role: 'user', content: 'Hi' }, { type: 'item_reference', id: 'fc_unknown' }], max_output_tokens: 2 }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    expect(unknown).toMatchObject({ status: 404, type: 'invalid_request_error', code: 'not_found', param: 'input[1].id', message: expect.stringContaining('fc_unknown') });
  });

  it('streaming: the event sequence OpenAI sends, and the SDK rebuilds the same response', async () => {
    const stream = await s.client.responses.create({ ...answerRequest, stream: true } as OpenAI.Responses.ResponseCreateParamsStreaming);
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const e of stream) events.push(e);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    expect(events[0]!.type).toBe('response.created');
    expect(events[1]!.type).toBe('response.in_progress');
    const last = events.at(-1)!;
    expect(last.type).toBe('response.completed');
    const types = events.map((e) => e.type);
    expect(types).toContain('response.output_item.added');
    expect(types).toContain('response.output_item.done');
    // Every item is added before its deltas and done after them.
    const added = new Map<number, number>();
    events.forEach((e, i) => {
      if (e.type === 'response.output_item.added') added.set(e.output_index, i);
      if ('output_index' in e && e.type !== 'response.output_item.added') expect(added.get(e.output_index)).toBeLessThan(i);
    });
    const final = (last as OpenAI.Responses.ResponseCompletedEvent).response;
    // Same seed, same prompt: the same output text as the non-streaming request.
    const deltas = events.filter((e) => e.type === 'response.output_text.delta').map((e) => (e as OpenAI.Responses.ResponseTextDeltaEvent).delta);
    expect(deltas.join('')).toBe(answer.output_text);
    // The same counts, but for the prefix cache, which now holds more of this prompt.
    const { input_tokens_details: cached, ...counts } = final.usage!;
    const { input_tokens_details: cachedBefore, ...countsBefore } = answer.usage!;
    expect(counts).toEqual(countsBefore);
    expect(cached.cached_tokens).toBeGreaterThanOrEqual(cachedBefore.cached_tokens);
    expect(types).toContain('response.content_part.added');
    expect(types).toContain('response.output_text.done');

    // The SDK's stream helper accumulates the events into the final response.
    const helper = s.client.responses.stream(answerRequest as unknown as OpenAI.Responses.ResponseCreateParamsStreaming);
    const rebuilt = await helper.finalResponse();
    expect(rebuilt.output_text).toBe(answer.output_text);
    expect(rebuilt.output.map((i) => i.type)).toEqual(answer.output.map((i) => i.type));
  });

  it('function tools and function_call / function_call_output items are accepted', async () => {
    const r = await s.client.responses.create({
      model: MODEL,
      max_output_tokens: 2,
      ...FIXED_LENGTH,
      reasoning: { effort: 'high' },
      tools: [{ type: 'function', name: 'lookup', description: 'Looks up a word', parameters: { type: 'object', properties: { word: { type: 'string' } } }, strict: false }],
      input: [
        { role: 'user', content: 'Define "cat".' },
        { type: 'reasoning', id: 'rs_1', summary: [], content: [{ type: 'reasoning_text', text: 'Use lookup.' }] },
        { type: 'function_call', call_id: 'call_9', name: 'lookup', arguments: '{"word":"cat"}' },
        { type: 'function_call_output', call_id: 'call_9', output: 'a small feline' },
      ] as OpenAI.Responses.ResponseInput,
    });
    expect(r.status).toBe('incomplete');
    expect(r.usage!.output_tokens).toBe(2);
  });
});

describe('metrics', () => {
  it('/metrics is Prometheus text with requests, tokens, latency histograms, queue depth and KV use', async () => {
    // While a generation runs (a long one, stopped once looked at) the KV positions in use show up.
    const ac = new AbortController();
    const stream = await s.client.chat.completions.create({ ...chatRequest, max_tokens: 200, stream: true }, { signal: ac.signal });
    await stream[Symbol.asyncIterator]().next();
    const during = await (await fetch(s.baseURL.replace('/v1', '/metrics'))).text();
    ac.abort();
    const inUse = Number(/^gpt_oss_kv_cache_positions_in_use\{model="synthetic:tiny"\} (\d+)$/m.exec(during)?.[1]);
    expect(inUse).toBeGreaterThanOrEqual(promptLength(chatRequest));
    expect(inUse).toBeLessThanOrEqual(2048);
    expect(during).toMatch(/^gpt_oss_requests_running\{model="synthetic:tiny"\} 1$/m);
    for (let t0 = Date.now(); s.model.queue.busy; ) {
      if (Date.now() - t0 > 30_000) throw new Error('the aborted generation did not stop');
      await new Promise((r) => setTimeout(r, 10));
    }

    const res = await fetch(s.baseURL.replace('/v1', '/metrics'));
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const line of text.trimEnd().split('\n')) {
      if (line.startsWith('#')) expect(line).toMatch(/^# (HELP|TYPE) gpt_oss_\w+ /);
      else expect(line).toMatch(/^gpt_oss_\w+(\{[^}]*\})? (-?\d+(\.\d+)?(e[-+]?\d+)?|\+Inf|NaN)$/);
    }
    const value = (re: RegExp) => Number(re.exec(text)?.[1]);
    expect(value(/^gpt_oss_http_requests_total\{route="\/v1\/chat\/completions",method="POST",status="200"\} (\d+)$/m)).toBeGreaterThanOrEqual(3);
    expect(value(/^gpt_oss_http_requests_total\{route="\/v1\/chat\/completions",method="POST",status="400"\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^gpt_oss_prompt_tokens_total (\d+)$/m)).toBeGreaterThan(0);
    expect(value(/^gpt_oss_generation_tokens_total (\d+)$/m)).toBeGreaterThan(0);
    expect(value(/^gpt_oss_time_to_first_token_seconds_count (\d+)$/m)).toBeGreaterThan(0);
    expect(value(/^gpt_oss_inter_token_latency_seconds_count (\d+)$/m)).toBeGreaterThan(0);
    expect(text).toMatch(/^gpt_oss_time_to_first_token_seconds_bucket\{le="\+Inf"\} \d+$/m);
    expect(text).toMatch(/^gpt_oss_queue_depth\{model="synthetic:tiny"\} 0$/m);
    expect(text).toMatch(/^gpt_oss_kv_cache_positions\{model="synthetic:tiny"\} 2048$/m);
    expect(text).toMatch(/^gpt_oss_kv_cache_positions_in_use\{model="synthetic:tiny"\} 0$/m);
    expect(text).toMatch(/^gpt_oss_kv_cache_usage_ratio\{model="synthetic:tiny"\} 0$/m);
  });

  it('unknown routes are OpenAI-shaped 404s', async () => {
    const r = await post(s.baseURL, '/nope', {});
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ error: { message: expect.stringContaining('/v1/nope'), type: 'invalid_request_error', param: null, code: 'unknown_url' } });
  });
});
