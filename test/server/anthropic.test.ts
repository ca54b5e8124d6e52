// The Anthropic TypeScript SDK (@anthropic-ai/sdk) against /v1/messages, with the scripted engine
// so the mapping is exact: text with its thinking block, a stream, a tool loop (tool_use ->
// tool_result with the signed thinking sent back), count_tokens, Anthropic-shaped errors; the
// key as x-api-key. Then /tokenize and /detokenize in vLLM's shapes.
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderChatCompletion } from '../../src/harmony/index.js';
import { loadModelTokenizer, type HarmonyTokenizer } from '../../src/tokenizer/index.js';
import { CURRENT_DATE, MODEL, post, startServer, type TestServer } from './helpers.js';
import { ScriptedEngine } from './scripted-engine.js';

let tokenizer: HarmonyTokenizer;
let engine: ScriptedEngine;
let s: TestServer;
let root: string;
let client: Anthropic;
const KEY = 'sk-test-anthropic';
const harmony = (text: string) => tokenizer.encodeWithSpecialTokens(text);
const lastPrompt = () => tokenizer.decode(engine.prompts.at(-1)!);

const ANSWER = '<|channel|>analysis<|message|>A greeting.<|end|><|start|>assistant<|channel|>final<|message|>Hello from gpt-oss.<|return|>';
const CALL = '<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}<|call|>';
const AFTER = '<|channel|>analysis<|message|>Got it.<|end|><|start|>assistant<|channel|>final<|message|>It is sunny in Paris.<|return|>';
const weather: Anthropic.Tool = { name: 'get_weather', description: 'Weather in a city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };

beforeAll(async () => {
  tokenizer = await loadModelTokenizer();
  engine = new ScriptedEngine(() => harmony(ANSWER), 8192);
  s = await startServer({ engine, tokenizer, apiKey: KEY });
  root = s.baseURL.replace(/\/v1$/, '');
  client = new Anthropic({ baseURL: root, apiKey: KEY, maxRetries: 0 });
});
afterAll(async () => {
  await s?.close();
});

describe('Anthropic SDK against /v1/messages', () => {
  it('text: a thinking block (signed), then the answer; system goes to the instructions', async () => {
    engine.next = () => harmony(ANSWER);
    const m = await client.messages.create({ model: MODEL, max_tokens: 256, system: 'Be brief.', messages: [{ role: 'user', content: 'Hi' }] });
    expect(m.stop_reason).toBe('end_turn');
    expect(m.content).toEqual([
      { type: 'thinking', thinking: 'A greeting.', signature: expect.stringMatching(/^gptoss1\./) },
      { type: 'text', text: 'Hello from gpt-oss.' },
    ]);
    expect(m.usage.output_tokens).toBe(harmony(ANSWER).length);
    expect(lastPrompt()).toContain('# Instructions\n\nBe brief.');
    const off = await client.messages.create({ model: MODEL, max_tokens: 256, thinking: { type: 'disabled' }, messages: [{ role: 'user', content: 'Hi' }] });
    expect(off.content).toEqual([{ type: 'text', text: 'Hello from gpt-oss.' }]);
  });

  it('stream: the SDK assembles the same message from the events', async () => {
    engine.next = () => harmony(ANSWER);
    const stream = client.messages.stream({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: 'Hi' }] });
    let text = '';
    stream.on('text', (t) => (text += t));
    const m = await stream.finalMessage();
    expect(text).toBe('Hello from gpt-oss.');
    expect(m.stop_reason).toBe('end_turn');
    expect(m.content.map((b) => b.type)).toEqual(['thinking', 'text']);
    expect((m.content[0] as Anthropic.ThinkingBlock).thinking).toBe('A greeting.');
  });

  it('a tool loop: tool_use, then tool_result with the signed thinking sent back', async () => {
    engine.next = () => harmony(CALL);
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
    const first = await client.messages.create({ model: MODEL, max_tokens: 512, tools: [weather], messages });
    expect(first.stop_reason).toBe('tool_use');
    const use = first.content.find((b) => b.type === 'tool_use') as Anthropic.ToolUseBlock;
    expect(use).toMatchObject({ name: 'get_weather', input: { city: 'Paris' }, id: expect.stringMatching(/^toolu_/) });
    const thinking = first.content.find((b) => b.type === 'thinking') as Anthropic.ThinkingBlock;
    // The client's copy is altered; the signature (the server's sealed copy) is what comes back.
    messages.push({ role: 'assistant', content: [{ ...thinking, thinking: 'edited by the client' }, use] });
    messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny, 24 C' }] });
    engine.next = () => harmony(AFTER);
    const second = await client.messages.create({ model: MODEL, max_tokens: 512, tools: [weather], messages });
    expect(second.content.at(-1)).toEqual({ type: 'text', text: 'It is sunny in Paris.' });
    const prompt = lastPrompt();
    expect(prompt).toContain('<|start|>assistant<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>{"city":"Paris"}<|call|>');
    expect(prompt).toContain('<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>sunny, 24 C<|end|>');
    expect(prompt).not.toContain('edited by the client');
    // tool_choice any forces a call (constrained decoding); a stream carries input_json_delta.
    engine.next = () => harmony(CALL);
    const stream = client.messages.stream({ model: MODEL, max_tokens: 512, tools: [weather], tool_choice: { type: 'any' }, messages: [{ role: 'user', content: 'Weather?' }] });
    const streamed = await stream.finalMessage();
    expect(streamed.stop_reason).toBe('tool_use');
    expect(streamed.content.find((b) => b.type === 'tool_use')).toMatchObject({ name: 'get_weather', input: { city: 'Paris' } });
  });

  it("Claude Code's fields: system messages between turns, thinking display omitted, output_config effort, deferred tools, context_management", async () => {
    engine.next = () => harmony(ANSWER);
    const deferred = { name: 'lookup_later', description: 'A deferred tool', input_schema: { type: 'object' as const, properties: {} }, defer_loading: true };
    const body = {
      model: MODEL,
      max_tokens: 256,
      system: 'Be brief.',
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'system', content: [{ type: 'text', text: 'The working folder is /tmp/w.', cache_control: { type: 'ephemeral' } }] },
      ],
      tools: [weather, deferred],
      thinking: { type: 'adaptive', display: 'omitted' },
      output_config: { effort: 'low' },
      context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] },
      metadata: { user_id: 'u' },
    };
    // as Claude Code sends it: ?beta=true, its beta header
    const r = await post(root, '/v1/messages?beta=true', body, { 'x-api-key': KEY, 'anthropic-beta': 'claude-code-20250219,context-management-2025-06-27', 'anthropic-version': '2023-06-01' });
    expect(r.status).toBe(200);
    expect(r.json.content).toEqual([
      { type: 'thinking', thinking: '', signature: expect.stringMatching(/^gptoss1\./) },
      { type: 'text', text: 'Hello from gpt-oss.' },
    ]);
    expect(s.app.gptOss.reasoningSeal.open(r.json.content[0].signature)).toBe('A greeting.');
    const prompt = lastPrompt();
    expect(prompt).toContain('Reasoning: low');
    expect(prompt).toContain('<|start|>user<|message|>Hi<|end|><|start|>system<|message|>The working folder is /tmp/w.<|end|>');
    expect(prompt).toContain('type get_weather =');
    expect(prompt).not.toContain('lookup_later');
    // max and xhigh are harmony's high; streamed, an omitted thinking block has no thinking_delta
    const stream = await fetch(`${root}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body: JSON.stringify({ ...body, output_config: { effort: 'max' }, stream: true }) });
    const events = await stream.text();
    expect(lastPrompt()).toContain('Reasoning: high');
    expect(events).toContain('signature_delta');
    expect(events).not.toContain('thinking_delta');
    expect((await post(root, '/v1/messages', { ...body, output_config: { effort: 'extreme' } }, { 'x-api-key': KEY })).status).toBe(400);
  });

  it('max_tokens past the context window (Claude Code asks for 32000): the turn gets what is left, then model_context_window_exceeded', async () => {
    engine.next = () => harmony(`<|channel|>final<|message|>${' a'.repeat(9000)}`);
    // (streamed: the SDK will not wait on a request for so many tokens without a stream)
    const m = await client.messages.stream({ model: MODEL, max_tokens: 32000, messages: [{ role: 'user', content: 'Count.' }] }).finalMessage();
    expect(m.stop_reason as string).toBe('model_context_window_exceeded');
    expect(m.usage.input_tokens + m.usage.output_tokens).toBe(8192);
    // a prompt that fills the context is still the client's error
    const full = await post(root, '/v1/messages', { model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'word '.repeat(9000) }] }, { 'x-api-key': KEY });
    expect(full.status).toBe(400);
  });

  it('count_tokens counts the prompt the request renders', async () => {
    const r = await client.messages.countTokens({ model: MODEL, system: 'Be brief.', messages: [{ role: 'user', content: 'Hi' }] });
    const expected = renderChatCompletion({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }] }, { tokenizer, currentDate: CURRENT_DATE }).tokenIds.length;
    expect(r.input_tokens).toBe(expected);
  });

  it('errors are Anthropic-shaped and raise the SDK classes', async () => {
    await expect(client.messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }] }] })).rejects.toMatchObject({
      status: 400,
      error: { type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('reads text only') } },
    });
    await expect(client.messages.create({ model: 'claude-nope', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    const wrongKey = new Anthropic({ baseURL: root, apiKey: 'wrong', maxRetries: 0 });
    await expect(wrongKey.messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    const missing = await post(s.baseURL, '/messages', { model: MODEL, messages: [{ role: 'user', content: 'x' }] }, { authorization: `Bearer ${KEY}` });
    expect(missing.status).toBe(400);
    expect(missing.json).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
  });
});

describe('/tokenize and /detokenize', () => {
  const auth = { authorization: `Bearer ${KEY}` };
  it('a prompt, chat messages, token strings; and back', async () => {
    const r = await post(root, '/tokenize', { model: MODEL, prompt: '<|start|>user<|message|>Hello world', return_token_strs: true }, auth);
    expect(r.status).toBe(200);
    expect(r.json.tokens).toEqual(tokenizer.encodeWithSpecialTokens('<|start|>user<|message|>Hello world'));
    expect(r.json).toMatchObject({ count: r.json.tokens.length, max_model_len: 8192 });
    expect(r.json.token_strs.join('')).toBe('<|start|>user<|message|>Hello world');
    const chat = await post(root, '/tokenize', { messages: [{ role: 'user', content: 'Hi' }] }, auth);
    expect(chat.json.tokens).toEqual(renderChatCompletion({ messages: [{ role: 'user', content: 'Hi' }] }, { tokenizer, currentDate: CURRENT_DATE }).tokenIds);
    expect(chat.json.token_strs).toBeNull();
    const back = await post(root, '/detokenize', { tokens: r.json.tokens }, auth);
    expect(back.json).toEqual({ prompt: '<|start|>user<|message|>Hello world' });
  });

  it('bad input is a 400; no key is a 401', async () => {
    expect((await post(root, '/tokenize', { prompt: 'x', messages: [{ role: 'user', content: 'x' }] }, auth)).status).toBe(400);
    expect((await post(root, '/tokenize', {}, auth)).status).toBe(400);
    expect((await post(root, '/detokenize', { tokens: [999999999] }, auth)).json.error.param).toBe('tokens[0]');
    expect((await post(root, '/detokenize', { tokens: ['a'] }, auth)).status).toBe(400);
    expect((await post(root, '/tokenize', { prompt: 'x' })).status).toBe(401);
  });
});
