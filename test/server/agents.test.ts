// What agent clients send beyond the OpenAI basics, against the scripted engine (exact answers):
// unknown fields ignored and named (or refused with strict params), namespace tools, built-in
// tools dropped, calls to undeclared recipients, sealed reasoning sent back, reasoning effort
// spellings and include_reasoning, the sampler fields kept at their neutral values, response.failed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelTokenizer, type HarmonyTokenizer } from '../../src/tokenizer/index.js';
import { MODEL, post, startServer, type TestServer } from './helpers.js';
import { ScriptedEngine } from './scripted-engine.js';

let tokenizer: HarmonyTokenizer;
let engine: ScriptedEngine;
let s: TestServer;
let strict: TestServer;
const harmony = (text: string) => tokenizer.encodeWithSpecialTokens(text);
const lastPrompt = () => tokenizer.decode(engine.prompts.at(-1)!);

const ANSWER = '<|channel|>analysis<|message|>Thinking it over.<|end|><|start|>assistant<|channel|>final<|message|>Done.<|return|>';
const call = (recipient: string, args: string) =>
  `<|channel|>analysis<|message|>I need a tool.<|end|><|start|>assistant<|channel|>commentary to=${recipient} <|constrain|>json<|message|>${args}<|call|>`;
const fnTool = { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } };
const nsTool = {
  type: 'namespace',
  name: 'multi_agent_v1',
  description: 'Tools for sub-agents.',
  tools: [{ type: 'function', name: 'close_agent', description: 'Close an agent.', parameters: { type: 'object', properties: { target: { type: 'string' } }, required: ['target'] } }],
};

/** The events of an SSE body, in order. */
function events(text: string): Array<{ event: string; data: any }> {
  return text
    .split('\n\n')
    .filter((b) => b.includes('data: '))
    .map((b) => ({ event: /^event: (.*)$/m.exec(b)?.[1] ?? '', data: JSON.parse(/^data: (.*)$/m.exec(b)![1]!) }));
}

beforeAll(async () => {
  tokenizer = await loadModelTokenizer();
  engine = new ScriptedEngine(() => harmony(ANSWER), 4096);
  s = await startServer({ engine, tokenizer });
  strict = await startServer({ engine, tokenizer, strictParams: true });
});
afterAll(async () => {
  await s?.close();
  await strict?.close();
});

describe('unknown request fields', () => {
  it('are ignored and named in x-gpt-oss-ignored-params on every route; strict params refuse them', async () => {
    const extra = { client_metadata_x: 1, extra_body: { a: 1 }, top_a: 0.2 };
    const routes: Array<[string, object]> = [
      ['/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'hi' }], ...extra, reasoning: { effort: 'low', foo: 1 }, stream_options: null }],
      ['/completions', { model: MODEL, prompt: 'hi', ...extra }],
      ['/responses', { model: MODEL, input: 'hi', ...extra, text: { verbosity: 'low', other: true } }],
    ];
    for (const [route, body] of routes) {
      const r = await post(s.baseURL, route, body);
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      const named = r.headers.get('x-gpt-oss-ignored-params')!.split(', ');
      expect(named).toEqual(expect.arrayContaining(['client_metadata_x', 'extra_body', 'top_a']));
      if (route === '/chat/completions') expect(named).toContain('reasoning.foo');
      if (route === '/responses') expect(named).toContain('text.other');
      const refused = await post(strict.baseURL, route, body);
      expect(refused.status).toBe(400);
      expect(refused.json.error).toMatchObject({ code: 'unknown_parameter', message: expect.stringMatching(/^Unrecognized request argument supplied: /) });
    }
    // Streams carry the header too; a request with only known fields has none.
    const res = await fetch(`${s.baseURL}/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, input: 'hi', stream: true, nope: 1 }) });
    expect(res.headers.get('x-gpt-oss-ignored-params')).toBe('nope');
    await res.text();
    const clean = await post(s.baseURL, '/responses', { model: MODEL, input: 'hi', client_metadata: { a: 'b' }, prompt_cache_key: 'k', store: false });
    expect(clean.status).toBe(200);
    expect(clean.headers.get('x-gpt-oss-ignored-params')).toBeNull();
  });

  it('a known field with a value the server lacks stays a 400 naming field and value; the sampler fields pass', async () => {
    const chat = { model: MODEL, messages: [{ role: 'user', content: 'hi' }] };
    const r = await post(s.baseURL, '/chat/completions', { ...chat, n: 17 });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ param: 'n', message: expect.stringContaining('n=17') });
    for (const [field, value] of [['min_p', 0.1], ['repetition_penalty', 1.1], ['presence_penalty', 0.5], ['frequency_penalty', -0.5], ['logit_bias', { '17': 3 }]] as const) {
      expect((await post(s.baseURL, '/chat/completions', { ...chat, [field]: value })).status, field).toBe(200);
      expect((await post(s.baseURL, '/completions', { model: MODEL, prompt: 'hi', [field]: value })).status, field).toBe(200);
    }
  });
});

describe('reasoning options in chat', () => {
  it('every effort spelling reaches the system message', async () => {
    const chat = { model: MODEL, messages: [{ role: 'user', content: 'hi' }] };
    for (const extra of [{ reasoning_effort: 'high' }, { reasoning: { effort: 'high' } }, { chat_template_kwargs: { reasoning_effort: 'high', enable_thinking: true } }]) {
      expect((await post(s.baseURL, '/chat/completions', { ...chat, ...extra })).status).toBe(200);
      expect(lastPrompt()).toContain('Reasoning: high');
    }
  });

  it('include_reasoning false and reasoning.exclude leave the reasoning out, streamed or not', async () => {
    const chat = { model: MODEL, messages: [{ role: 'user', content: 'hi' }] };
    for (const extra of [{ include_reasoning: false }, { reasoning: { exclude: true } }]) {
      const r = await post(s.baseURL, '/chat/completions', { ...chat, ...extra });
      expect(r.json.choices[0].message).toMatchObject({ content: 'Done.', reasoning: null, reasoning_content: null });
      const res = await fetch(`${s.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...chat, ...extra, stream: true }) });
      const text = await res.text();
      expect(text).not.toContain('Thinking');
      expect(text).toContain('"content":"Done"');
    }
    const shown = await post(s.baseURL, '/chat/completions', chat);
    expect(shown.json.choices[0].message.reasoning).toBe('Thinking it over.');
  });
});

describe('Responses for agents', () => {
  it('namespace tools are a harmony namespace; their calls come back with name and namespace', async () => {
    engine.next = () => harmony(call('multi_agent_v1.close_agent', '{"target":"a1"}'));
    const r = await post(s.baseURL, '/responses', { model: MODEL, input: 'close it', tools: [fnTool, nsTool] });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(lastPrompt()).toContain('## multi_agent_v1\n\n// Tools for sub-agents.\nnamespace multi_agent_v1 {\n\n// Close an agent.\ntype close_agent = (_: {\ntarget: string,\n}) => any;\n\n} // namespace multi_agent_v1');
    expect(lastPrompt()).toContain('namespace functions {');
    const fc = r.json.output.find((i: any) => i.type === 'function_call');
    expect(fc).toMatchObject({ name: 'close_agent', namespace: 'multi_agent_v1', arguments: '{"target":"a1"}' });

    // Sent back: rendered as the namespace's call and result.
    engine.next = () => harmony(ANSWER);
    const again = await post(s.baseURL, '/responses', {
      model: MODEL,
      tools: [nsTool],
      input: [
        { role: 'user', content: 'close it' },
        { type: 'function_call', call_id: fc.call_id, name: 'close_agent', namespace: 'multi_agent_v1', arguments: '{"target":"a1"}' },
        { type: 'function_call_output', call_id: fc.call_id, output: 'closed' },
      ],
    });
    expect(again.status, JSON.stringify(again.json)).toBe(200);
    expect(lastPrompt()).toContain('<|start|>assistant to=multi_agent_v1.close_agent<|channel|>commentary <|constrain|>json<|message|>{"target":"a1"}<|call|><|start|>multi_agent_v1.close_agent to=assistant<|channel|>commentary<|message|>closed<|end|>');
  });

  it('built-in tools are dropped (the prompt has none); forcing one is a 400', async () => {
    engine.next = () => harmony(ANSWER);
    const builtins = ['web_search', 'file_search', 'code_interpreter', 'computer_use', 'mcp', 'image_generation', 'local_shell'].map((type) => ({ type }));
    const r = await post(s.baseURL, '/responses', { model: MODEL, input: 'hi', tools: builtins });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(lastPrompt()).not.toContain('# Tools');
    expect(r.json.tools).toEqual([]);
    const forced = await post(s.baseURL, '/responses', { model: MODEL, input: 'hi', tools: builtins, tool_choice: { type: 'web_search' } });
    expect(forced.status).toBe(400);
    expect(forced.json.error).toMatchObject({ param: 'tool_choice', message: expect.stringContaining('built-in') });
    const other = await post(s.baseURL, '/responses', { model: MODEL, input: 'hi', tools: [{ type: 'teleport' }] });
    expect(other.status).toBe(400);
  });

  it('calls to undeclared recipients: tool calls under their full name with tools, text without', async () => {
    for (const recipient of ['repo_browser.open_file', 'container.exec', 'python', 'browser.search', 'functions.not_declared']) {
      engine.next = () => harmony(call(recipient, '{"x":1}'));
      const withTools = await post(s.baseURL, '/responses', { model: MODEL, input: 'go', tools: [fnTool] });
      const name = recipient.startsWith('functions.') ? 'not_declared' : recipient;
      expect(withTools.json.output.find((i: any) => i.type === 'function_call')).toMatchObject({ name, arguments: '{"x":1}' });
      const chat = await post(s.baseURL, '/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'go' }], tools: [{ type: 'function', function: { name: 'get_weather' } }] });
      expect(chat.json.choices[0]).toMatchObject({ finish_reason: 'tool_calls', message: { tool_calls: [{ function: { name, arguments: '{"x":1}' } }] } });
      const noTools = await post(s.baseURL, '/responses', { model: MODEL, input: 'go' });
      const message = noTools.json.output.find((i: any) => i.type === 'message');
      expect(message.content[0].text).toBe(`[${recipient}] {"x":1}`);
    }
    // Such a call sent back renders under its own recipient, not functions.
    engine.next = () => harmony(ANSWER);
    const back = await post(s.baseURL, '/chat/completions', {
      model: MODEL,
      tools: [{ type: 'function', function: { name: 'get_weather' } }],
      messages: [
        { role: 'user', content: 'go' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'container.exec', arguments: '{"x":1}' } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'unknown tool' },
      ],
    });
    expect(back.status).toBe(200);
    expect(lastPrompt()).toContain('<|start|>assistant to=container.exec<|channel|>commentary <|constrain|>json<|message|>{"x":1}<|call|><|start|>container.exec to=assistant');
  });

  it('include reasoning.encrypted_content seals the reasoning; sent back (content null) it is restored in a tool loop', async () => {
    engine.next = () => harmony(call('functions.get_weather', '{"city":"Oslo"}'));
    const r = await post(s.baseURL, '/responses', { model: MODEL, input: 'weather?', tools: [fnTool], store: false, include: ['reasoning.encrypted_content'], reasoning: { summary: 'auto' } });
    const rs = r.json.output.find((i: any) => i.type === 'reasoning');
    expect(rs.summary).toEqual([]);
    expect(r.json.reasoning.summary).toBe('auto');
    expect(rs.encrypted_content).toMatch(/^gptoss1\./);
    expect(rs.encrypted_content).not.toContain('tool');
    const fc = r.json.output.find((i: any) => i.type === 'function_call');
    engine.next = () => harmony(ANSWER);
    const loop = (reasoning: object) => [
      { role: 'user', content: 'weather?' },
      { type: 'reasoning', id: rs.id, summary: [], content: null, ...reasoning },
      { type: 'function_call', call_id: fc.call_id, name: 'get_weather', arguments: fc.arguments },
      { type: 'function_call_output', call_id: fc.call_id, output: 'sunny' },
    ];
    const back = await post(s.baseURL, '/responses', { model: MODEL, tools: [fnTool], store: false, input: loop({ encrypted_content: rs.encrypted_content }) });
    expect(back.status, JSON.stringify(back.json)).toBe(200);
    expect(lastPrompt()).toContain('<|start|>assistant<|channel|>analysis<|message|>I need a tool.<|end|><|start|>assistant to=functions.get_weather');
    // Another key's (or a tampered) value opens to nothing: the reasoning is left out, no 400.
    const forged = rs.encrypted_content.slice(0, -4) + (rs.encrypted_content.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const bad = await post(s.baseURL, '/responses', { model: MODEL, tools: [fnTool], input: loop({ encrypted_content: forged }) });
    expect(bad.status).toBe(200);
    expect(lastPrompt()).not.toContain('I need a tool.');
  });

  it('input_image parts are a 400 that says the model reads text only', async () => {
    const r = await post(s.baseURL, '/responses', { model: MODEL, input: [{ role: 'user', content: [{ type: 'input_text', text: 'what is this' }, { type: 'input_image', image_url: 'data:image/png;base64,AAAA' }] }] });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toContain('reads text only');
    expect(r.json.error.param).toBe('input[0].content[1]');
  });

  it('a generation that fails ends the stream with response.failed', async () => {
    engine.next = () => {
      throw new Error('kernel failed');
    };
    const res = await fetch(`${s.baseURL}/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, input: 'hi', stream: true }) });
    const evs = events(await res.text());
    // then OpenAI's `error` event, which is what makes the SDKs raise
    expect(evs.at(-1)).toMatchObject({ event: 'error', data: { error: { type: 'server_error' } } });
    expect(evs.at(-2)).toMatchObject({ event: 'response.failed', data: { type: 'response.failed', response: { status: 'failed', error: { code: 'server_error', message: expect.any(String) } } } });
    engine.next = () => harmony(ANSWER);
  });
});

describe('transport', () => {
  it('a stream waiting for its first token gets keep-alive comments; CORS headers on plain and streamed answers', async () => {
    const slow = new ScriptedEngine(() => harmony(ANSWER), 4096);
    slow.delayMs = 400;
    const t = await startServer({ engine: slow, tokenizer, sseKeepAliveMs: 50, corsOrigins: ['http://app.example'], apiKey: 'k' });
    try {
      const headers = { 'content-type': 'application/json', authorization: 'Bearer k', origin: 'http://app.example' };
      const res = await fetch(`${t.baseURL}/chat/completions`, { method: 'POST', headers, body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream: true }) });
      expect(res.headers.get('access-control-allow-origin')).toBe('http://app.example');
      const text = await res.text();
      const pings = text.slice(0, text.indexOf('"content":"Done"')).split(': keep-alive\n\n').length - 1;
      expect(pings, text.slice(0, 300)).toBeGreaterThanOrEqual(3);
      expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
      // The preflight needs no key; another origin gets no CORS header.
      const pre = await fetch(`${t.baseURL}/chat/completions`, { method: 'OPTIONS', headers: { origin: 'http://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } });
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-origin')).toBe('http://app.example');
      slow.delayMs = 0;
      const other = await fetch(`${t.baseURL}/models`, { headers: { authorization: 'Bearer k', origin: 'http://evil.example' } });
      expect(other.status).toBe(200);
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      const plain = await fetch(`${t.baseURL}/models`, { headers: { authorization: 'Bearer k', origin: 'http://app.example' } });
      expect(plain.headers.get('access-control-allow-origin')).toBe('http://app.example');
    } finally {
      await t.close();
    }
  });
});
