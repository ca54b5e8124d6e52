// Several models in one server, `model: "auto"` routing, and usage accounting, on the real server
// with two synthetic models of different shapes (both with the full o200k_harmony vocabulary:
// synthetic:tiny as `small`, synthetic:medium as `large`) driven with the official `openai`
// client. The server is configured from flags and real files through serve's own parsers.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import type { FastifyInstance } from 'fastify';
import { renderChatCompletion, renderRawPrompt, renderResponsesInput } from '../../src/harmony/index.js';
import type { HarmonyTokenizer } from '../../src/tokenizer/index.js';
import { createServer, DEFAULT_MAX_BATCH_TOKENS, DEFAULT_MAX_NUM_SEQS } from '../../src/server/app.js';
import { formatBytes, parseByteSize } from '../../src/server/gpu-memory.js';
import { planModel } from '../../src/server/model-loader.js';
import { lastUserText } from '../../src/server/models.js';
import { complexityScore, defaultRouting, parseRoutingConfig, route, type RouteFeatures } from '../../src/server/routing.js';
import { parseServeArgs, readServeFiles, serveCommand } from '../../src/server/serve-command.js';
import { matchApiKey, parseApiKeys, parsePrices } from '../../src/server/usage.js';
import { CURRENT_DATE, FIXED_LENGTH, post, until } from './helpers.js';

const KEYS = { alice: 'sk-alice-0123456789', carol: 'sk-carol-0123456789' };
const ADMIN = 'admin-secret-0123456789';
const PRICES = { small: { input: 0.05, output: 0.2, cached: 0.05 }, large: { input: 0.15, output: 0.6, cached: 0.075 } };

let dir: string;
let app: FastifyInstance;
let base: string;
let tokenizer: HarmonyTokenizer;
const client = (key: string) => new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0, timeout: 300_000 });
let alice: OpenAI;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'gpt-oss-multi-'));
  await writeFile(path.join(dir, 'keys'), `# who may call\nalice: ${KEYS.alice}\ncarol:${KEYS.carol}\n`);
  await writeFile(
    path.join(dir, 'prices'),
    `# model  input  output  cached ($ per 1M tokens)\nsmall ${PRICES.small.input} ${PRICES.small.output}\nlarge ${PRICES.large.input} ${PRICES.large.output} ${PRICES.large.cached}\n`,
  );
  // Long prompts at 300 tokens (instead of 4096) keep the prefill short on a CPU.
  await writeFile(path.join(dir, 'routing.json'), JSON.stringify({ prompt_tokens: 300 }));
  const config = parseServeArgs(
    [
      '--model', 'small=synthetic:tiny', '--model', 'large=synthetic:medium',
      '--routing', path.join(dir, 'routing.json'), '--api-keys-file', path.join(dir, 'keys'), '--prices', path.join(dir, 'prices'),
      '--admin-key', ADMIN, '--context', '1024', '--max-queue', '0', '--max-num-seqs', '1', '--gpu-memory', '2GB',
    ],
    {},
  );
  app = createServer({
    // Different contexts too: the large model takes what does not fit the small one.
    models: config.models.map((m) => ({ ...m, context: m.name === 'large' ? 2048 : 1024 })),
    ...readServeFiles(config),
    gpuMemory: config.gpuMemory,
    context: config.context,
    adminKey: config.adminKey,
    maxQueue: config.maxQueue,
    // one sequence per engine: a second request finds the queue (of 0) full
    maxNumSeqs: config.maxNumSeqs,
    currentDate: CURRENT_DATE,
    logger: false,
  });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
  await Promise.all(app.gptOss.models.all.map((m) => m.host.loaded));
  for (const m of app.gptOss.models.all) if (m.host.error) throw m.host.error;
  tokenizer = app.gptOss.models.all[0]!.host.ready().tokenizer;
  alice = client(KEYS.alice);
});
afterAll(async () => {
  await app?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const hi = [{ role: 'user' as const, content: 'Say hi.' }];
const tool = { type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };

/** A chat completion through the client, with the model header it came back with. */
async function chat(c: OpenAI, body: Partial<OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming>) {
  const { data, response } = await c.chat.completions.create({ model: 'auto', messages: hi, max_tokens: 2, seed: 1, ...body }).withResponse();
  return { data, header: response.headers.get('x-gpt-oss-model') };
}

const model = (name: string) => app.gptOss.models.find(name)!;

async function metricsText(): Promise<string> {
  return (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
}

describe('the routing rule (pure)', () => {
  const rule = defaultRouting('small', 'large');
  const f = (over: Partial<RouteFeatures>): RouteFeatures => ({
    effort: null, tools: 0, promptTokens: 50, neededContext: 51, smallContext: 1024, lastUserText: 'Say hi.', ...over,
  });
  it('the first rule that holds sends a request to the large model; otherwise the small one', () => {
    expect(route(rule, f({}))).toEqual({ size: 'small', reason: 'default' });
    expect(route(rule, f({ effort: 'high', tools: 2 }))).toEqual({ size: 'large', reason: 'reasoning_effort' });
    expect(route(rule, f({ effort: 'medium' }))).toEqual({ size: 'small', reason: 'default' });
    expect(route(rule, f({ tools: 1 }))).toEqual({ size: 'large', reason: 'tools' });
    expect(route(rule, f({ neededContext: 1025 }))).toEqual({ size: 'large', reason: 'context' });
    expect(route(rule, f({ promptTokens: 4096, neededContext: 4097, smallContext: 8192 }))).toEqual({ size: 'large', reason: 'prompt_tokens' });
    expect(route(rule, f({ lastUserText: 'Prove this theorem, step by step.' }))).toEqual({ size: 'large', reason: 'complexity' });
    expect(route({ ...rule, tools: false, complexity: null }, f({ tools: 3, lastUserText: 'Prove this theorem, step by step.' }))).toEqual({ size: 'small', reason: 'default' });
  });

  it('complexity: keywords present (once each), a code block, and length', () => {
    expect(complexityScore('hello', rule)).toBe(0);
    expect(complexityScore('Prove it. PROVE it again, then optimize.', rule)).toBe(2);
    expect(complexityScore('Why does this fail?\n```js\nx()\n```', rule)).toBe(2);
    expect(complexityScore('word '.repeat(300), rule)).toBe(2);
  });

  it('the last user message of chat messages and Responses input', () => {
    expect(lastUserText([{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: [{ type: 'text', text: 'c' }, { type: 'text', text: 'd' }] }])).toBe('c\nd');
    expect(lastUserText([{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'e' }] }, { type: 'function_call_output', call_id: 'x', output: '1' }])).toBe('e');
    expect(lastUserText('plain')).toBe('plain');
  });

  it('the --routing file: defaults for what it leaves out, and errors that name the key', () => {
    const c = parseRoutingConfig('{"name": "router", "reasoning_effort": ["medium", "high"], "complexity": null, "fallback": false}', 'r.json', ['a', 'b', 'c']);
    expect(c).toMatchObject({ name: 'router', small: 'a', large: 'b', reasoningEffort: ['medium', 'high'], complexity: null, fallback: false, promptTokens: 4096, tools: true });
    expect(parseRoutingConfig('{"small": "c", "large": "a"}', 'r.json', ['a', 'b', 'c'])).toMatchObject({ small: 'c', large: 'a' });
    expect(() => parseRoutingConfig('{"prompt_tokens": 0}', 'r.json', ['a', 'b'])).toThrow('r.json: "prompt_tokens" must be a positive whole number or null');
    expect(() => parseRoutingConfig('{"larg": "b"}', 'r.json', ['a', 'b'])).toThrow('r.json: unknown key "larg"');
    expect(() => parseRoutingConfig('{"large": "x"}', 'r.json', ['a', 'b'])).toThrow('"large" is "x", not a served model (a, b)');
    expect(() => parseRoutingConfig('{"name": "a"}', 'r.json', ['a', 'b'])).toThrow(/already a served model/);
    expect(() => parseRoutingConfig('{"tools": true,}', 'r.json', ['a', 'b'])).toThrow(/^r\.json: not valid JSON/);
  });
});

describe('several models in one server', () => {
  it('/v1/models lists both models and auto; each model has its own context', async () => {
    const ids = [];
    for await (const m of alice.models.list()) ids.push(m);
    expect(ids.map((m) => m.id)).toEqual(['small', 'large', 'auto']);
    expect(ids.map((m) => (m as { max_model_len?: number }).max_model_len)).toEqual([1024, 2048, undefined]);
    expect(await alice.models.retrieve('auto')).toMatchObject({ id: 'auto', routes_to: ['small', 'large'] });
    expect((await alice.models.retrieve('synthetic:medium')).id).toBe('large');
    const health = await (await fetch(`${base}/health`)).json();
    expect(health).toMatchObject({ status: 'ok', models: [{ name: 'small', status: 'ready' }, { name: 'large', status: 'ready' }] });
  });

  it('an unknown model is a 404 model_not_found that lists the served ones', async () => {
    const err = await alice.chat.completions.create({ model: 'gpt-4o', messages: hi, max_tokens: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    expect((err as Error).message).toContain('This server serves: small, large, auto.');
  });

  it('auto: routine requests go to the small model, effort high, tools, long or complex prompts to the large one', async () => {
    const cases: Array<[Partial<OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming>, string]> = [
      [{}, 'small'],
      [{ reasoning_effort: 'high' }, 'large'],
      [{ reasoning_effort: 'low' }, 'small'],
      [{ tools: [tool] }, 'large'],
      [{ messages: [{ role: 'user', content: 'Prove the theorem step by step.' }] }, 'large'],
      [{ messages: [{ role: 'user', content: 'Summarize: ' + 'the cat sat on the mat. '.repeat(60) }] }, 'large'],
      // A pinned model is taken whatever the rule would say; its spec names it too.
      [{ model: 'small', reasoning_effort: 'high' }, 'small'],
      [{ model: 'synthetic:medium' }, 'large'],
      [{ model: undefined as unknown as string }, 'small'],
    ];
    for (const [body, want] of cases) {
      const { data, header } = await chat(alice, body);
      expect([data.model, header], JSON.stringify(body).slice(0, 80)).toEqual([want, want]);
    }
    // The other APIs route too, and a stream carries the choice in its chunks and header.
    const { data: r } = await alice.responses.create({ model: 'auto', input: 'Weather?', tools: [{ type: 'function', name: 'w', parameters: {}, strict: false }], max_output_tokens: 2 }).withResponse();
    expect(r.model).toBe('large');
    const c = await alice.completions.create({ model: 'auto', prompt: 'Once upon a time', max_tokens: 2 });
    expect(c.model).toBe('small');
    const { data: stream, response } = await alice.chat.completions.create({ model: 'auto', messages: hi, max_tokens: 2, reasoning_effort: 'high', stream: true }).withResponse();
    expect(response.headers.get('x-gpt-oss-model')).toBe('large');
    for await (const chunk of stream) expect(chunk.model).toBe('large');
  });

  it('a prompt plus completion that does not fit the small model goes to the large one', async () => {
    const ac = new AbortController();
    const { data: stream, response } = await alice.chat.completions
      .create({ model: 'auto', messages: hi, max_tokens: 1000, stream: true }, { signal: ac.signal })
      .withResponse();
    expect(response.headers.get('x-gpt-oss-model')).toBe('large');
    // The first chunk goes out when the turn starts: from then on the model is busy until it stops.
    expect((await stream[Symbol.asyncIterator]().next()).value?.model).toBe('large');
    ac.abort();
    await until('the large model is idle', () => !model('large').queue.busy);
    expect(await metricsText()).toMatch(/^gpt_oss_routed_requests_total\{model="large",reason="context"\} 1$/m);
  });

  it('when the chosen model is busy (queue full), auto falls back to the other; a pinned request gets 429', async () => {
    const small = model('small');
    const ac = new AbortController();
    const busy = await alice.chat.completions.create({ model: 'small', messages: hi, max_tokens: 500, stream: true, ...FIXED_LENGTH }, { signal: ac.signal });
    const iter = busy[Symbol.asyncIterator]();
    await iter.next();
    expect(small.queue.busy).toBe(true);
    try {
      const { data, header } = await chat(alice, {});
      expect([data.model, header]).toEqual(['large', 'large']);
      await expect(alice.chat.completions.create({ model: 'small', messages: hi, max_tokens: 1 })).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    } finally {
      ac.abort();
    }
    await until('the small model is idle', () => !small.queue.busy);
    const text = await metricsText();
    expect(text).toMatch(/^gpt_oss_routed_requests_total\{model="large",reason="fallback"\} 1$/m);
  });

  it('/metrics counts the routing decisions and shows each model\'s queue', async () => {
    const text = await metricsText();
    const count = (labels: string) => Number(new RegExp(`^gpt_oss_routed_requests_total\\{${labels}\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    // From the test above that sent one request per rule.
    expect(count('model="large",reason="reasoning_effort"')).toBe(2);
    expect(count('model="large",reason="tools"')).toBe(2);
    expect(count('model="large",reason="complexity"')).toBe(1);
    expect(count('model="large",reason="prompt_tokens"')).toBe(1);
    expect(count('model="small",reason="pinned"')).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/^gpt_oss_queue_depth\{model="small"\} 0$/m);
    expect(text).toMatch(/^gpt_oss_model_ready\{model="large"\} 1$/m);
  });
});

describe('usage and cost accounting', () => {
  it('per key and model: requests and tokens exactly as the tokenizer counts them, cost by the price table', async () => {
    const carol = client(KEYS.carol);
    const chatBody = { model: 'small', messages: [{ role: 'user' as const, content: 'Count to three.' }], max_tokens: 3, seed: 7, ...FIXED_LENGTH };
    const a = await carol.chat.completions.create(chatBody);
    const b = await carol.chat.completions.create({ ...chatBody, model: 'large', max_tokens: 4 });
    const streamed = await carol.chat.completions.create({ ...chatBody, stream: true, stream_options: { include_usage: true } });
    let streamUsage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of streamed) if (chunk.usage) streamUsage = chunk.usage;
    const c = await carol.completions.create({ model: 'small', prompt: 'The sky is', max_tokens: 2, ...FIXED_LENGTH });
    const d = await carol.responses.create({ model: 'large', input: 'Hello there', max_output_tokens: 3, ...FIXED_LENGTH });

    // What the tokenizer says the prompts are.
    const chatPrompt = renderChatCompletion(chatBody, { tokenizer, currentDate: CURRENT_DATE }).tokenIds.length;
    const rawPrompt = renderRawPrompt('The sky is', { tokenizer }).tokenIds.length;
    const responsesPrompt = renderResponsesInput({ input: 'Hello there' }, { tokenizer, currentDate: CURRENT_DATE }).tokenIds.length;
    expect([a.usage!.prompt_tokens, b.usage!.prompt_tokens, streamUsage!.prompt_tokens, c.usage!.prompt_tokens, d.usage!.input_tokens]).toEqual([
      chatPrompt, chatPrompt, chatPrompt, rawPrompt, responsesPrompt,
    ]);
    // The streamed request repeats the first one's prompt on the same model: the prefix cache serves
    // its whole 32-position pages, short of the last token. The others may share the system prompt's
    // first pages; each counts what it reports.
    const cachedOf = (u: { prompt_tokens_details?: { cached_tokens?: number } | null } | null | undefined) => u?.prompt_tokens_details?.cached_tokens ?? 0;
    expect(cachedOf(streamUsage)).toBe(Math.floor((chatPrompt - 1) / 32) * 32);
    expect(cachedOf(streamUsage)).toBeGreaterThan(0);
    const small = { requests: 3, prompt_tokens: 2 * chatPrompt + rawPrompt, cached_tokens: cachedOf(a.usage) + cachedOf(streamUsage) + cachedOf(c.usage), completion_tokens: a.usage!.completion_tokens + streamUsage!.completion_tokens + c.usage!.completion_tokens };
    const large = { requests: 2, prompt_tokens: chatPrompt + responsesPrompt, cached_tokens: cachedOf(b.usage) + (d.usage!.input_tokens_details?.cached_tokens ?? 0), completion_tokens: b.usage!.completion_tokens + d.usage!.output_tokens };
    expect(small.completion_tokens).toBe(3 + 3 + 2);
    expect(large.completion_tokens).toBe(4 + 3);
    const cost = (u: typeof small, p: typeof PRICES.small) => ((u.prompt_tokens - u.cached_tokens) * p.input + u.cached_tokens * p.cached + u.completion_tokens * p.output) / 1e6;

    const res = await fetch(`${base}/admin/usage`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(res.status).toBe(200);
    const report = (await res.json()) as { data: Array<Record<string, unknown>>; prices_per_million_tokens: unknown };
    const rows = report.data.filter((r) => r['key'] === 'carol');
    expect(rows).toHaveLength(2);
    const row = (model: string) => rows.find((r) => r['model'] === model)!;
    expect(row('small')).toMatchObject(small);
    expect(row('large')).toMatchObject(large);
    expect(row('small')['cost_usd']).toBeCloseTo(cost(small, PRICES.small), 12);
    expect(row('large')['cost_usd']).toBeCloseTo(cost(large, PRICES.large), 12);
    expect(report.prices_per_million_tokens).toEqual({
      small: { input: 0.05, output: 0.2, cachedInput: 0.05 },
      large: { input: 0.15, output: 0.6, cachedInput: 0.075 },
    });

    // The same counters in /metrics, labelled by key name; raw keys appear nowhere.
    const text = await metricsText();
    const metric = (name: string, model: string) => Number(new RegExp(`^gpt_oss_usage_${name}\\{key="carol",model="${model}"\\} (\\S+)$`, 'm').exec(text)?.[1]);
    for (const [model, u] of [['small', small], ['large', large]] as const) {
      expect(metric('requests_total', model)).toBe(u.requests);
      expect(metric('prompt_tokens_total', model)).toBe(u.prompt_tokens);
      expect(metric('cached_tokens_total', model)).toBe(u.cached_tokens);
      expect(metric('completion_tokens_total', model)).toBe(u.completion_tokens);
      expect(metric('cost_dollars_total', model)).toBeCloseTo(cost(u, PRICES[model]), 12);
    }
    expect(text).toMatch(/^gpt_oss_usage_requests_total\{key="alice",model="large"\} \d+$/m);
    for (const secret of [...Object.values(KEYS), ADMIN]) expect(text).not.toContain(secret);
  });

  it('the admin endpoint takes only the admin key; /metrics takes an API key or the admin key', async () => {
    expect((await fetch(`${base}/admin/usage`)).status).toBe(401);
    expect((await fetch(`${base}/admin/usage`, { headers: { authorization: `Bearer ${KEYS.alice}` } })).status).toBe(401);
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${KEYS.carol}` } })).status).toBe(200);
    await expect(client(ADMIN).chat.completions.create({ model: 'small', messages: hi, max_tokens: 1 })).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await expect(client('sk-nobody-000000000').models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    // A server without --admin-key has no admin endpoint.
    const other = createServer({ models: [{ engine: app.gptOss.models.all[0]!.host.engine!, tokenizer }], logger: false });
    try {
      const url = await other.listen({ host: '127.0.0.1', port: 0 });
      const r = await fetch(`${url}/admin/usage`, { headers: { authorization: `Bearer ${ADMIN}` } });
      expect(r.status).toBe(403);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('admin_disabled');
    } finally {
      await other.close();
    }
  });

  it('keys are matched by value in constant time; the files parse strictly', () => {
    const keys = parseApiKeys('a:key-aaaaaaaa\n\n# b\nb: key-bbbbbbbb  # trailing comment\n', 'k');
    expect(keys).toEqual([{ name: 'a', key: 'key-aaaaaaaa' }, { name: 'b', key: 'key-bbbbbbbb' }]);
    expect(matchApiKey(keys, 'key-bbbbbbbb')?.name).toBe('b');
    expect(matchApiKey(keys, 'key-bbbbbbb')).toBeNull();
    expect(parsePrices('m 1 2\nn 0.5 1.5 0.25\n', 'p', ['m', 'n'])).toEqual(
      new Map([['m', { input: 1, output: 2, cachedInput: 1 }], ['n', { input: 0.5, output: 1.5, cachedInput: 0.25 }]]),
    );
    expect(parseByteSize('80GB')).toBe(80e9);
    expect(parseByteSize('1.5 GiB')).toBe(1.5 * 2 ** 30);
    expect(parseByteSize('eighty')).toBeNull();
  });
});

describe('serve refuses to start', () => {
  async function serve(argv: string[]): Promise<{ code: number; stderr: string }> {
    let stderr = '';
    const code = await serveCommand([...argv, '--port', '0', '--log-level', 'silent'], { env: {}, stderr: { write: (s: string) => (stderr += s) } });
    return { code, stderr };
  }

  it('on a malformed keys or price file, naming the file and the line', async () => {
    const keys = path.join(dir, 'bad-keys');
    await writeFile(keys, 'ok:sk-ok-01234567\n# fine\nbroken line without a colon\n');
    expect(await serve(['--model', 'synthetic:tiny', '--api-keys-file', keys])).toEqual({ code: 2, stderr: `error: ${keys} line 3: expected NAME:KEY\n` });
    await writeFile(keys, 'a:sk-same-01234567\nb:sk-same-01234567\n');
    expect((await serve(['--model', 'synthetic:tiny', '--api-keys-file', keys])).stderr).toBe(`error: ${keys} line 2: the key of "b" is also another name's key\n`);
    expect((await serve(['--model', 'synthetic:tiny', '--api-keys', 'a:sk-a-01234567,b:short'])).stderr).toBe(
      'error: --api-keys entry 2: the key of "b" must be at least 8 characters without spaces\n',
    );
    expect((await serve(['--model', 'synthetic:tiny', '--api-key', 'sk-0123456789', '--api-keys', 'default:sk-9876543210'])).stderr).toBe(
      'error: the API key name "default" is given twice (--api-key is "default", --api-keys, --api-keys-file)\n',
    );
    const prices = path.join(dir, 'bad-prices');
    await writeFile(prices, 'small 0.1 0.2\nlarge 0.1 -0.2\n');
    expect(await serve(['--model', 'small=synthetic:tiny', '--model', 'large=synthetic:medium', '--prices', prices])).toEqual({
      code: 2,
      stderr: `error: ${prices} line 2: "-0.2" is not a price ($ per 1M tokens, a number >= 0)\n`,
    });
    await writeFile(prices, '\nmedium 0.1 0.2\n');
    expect((await serve(['--model', 'small=synthetic:tiny', '--model', 'large=synthetic:medium', '--prices', prices])).stderr).toBe(
      `error: ${prices} line 2: "medium" is not a served model (small, large)\n`,
    );
    expect((await serve(['--model', 'synthetic:tiny', '--prices', path.join(dir, 'missing')])).stderr).toMatch(/^error: cannot read the prices file .*missing/);
  });

  it('when the models do not fit the GPU memory, with the numbers of each', async () => {
    const plans = await Promise.all(['synthetic:tiny', 'synthetic:medium'].map((m) => planModel(m, { context: 1024, maxNumSeqs: DEFAULT_MAX_NUM_SEQS, maxBatchTokens: DEFAULT_MAX_BATCH_TOKENS })));
    const total = plans[0]!.total + plans[1]!.total;
    const budget = Math.floor(total * 0.9);
    const { code, stderr } = await serve(['--model', 'small=synthetic:tiny', '--model', 'large=synthetic:medium', '--context', '1024', '--gpu-memory', String(budget)]);
    expect(code).toBe(1);
    expect(stderr).toContain(`do not fit in ${formatBytes(budget)} of GPU memory`);
    expect(stderr).toContain(`small (synthetic:tiny, context 1024) needs ${formatBytes(plans[0]!.total)}: weights ${formatBytes(plans[0]!.weights)}`);
    expect(stderr).toContain(`large (synthetic:medium, context 1024) needs ${formatBytes(plans[1]!.total)}`);
    expect(stderr).toContain(`together ${formatBytes(total)}`);
  });

  it('on conflicting model flags', () => {
    expect(parseServeArgs(['--model', 'a=synthetic:tiny', '--model', '/models/x'], {}).models).toEqual([{ name: 'a', spec: 'synthetic:tiny' }, { spec: '/models/x' }]);
    expect(parseServeArgs([], { GPT_OSS_MODEL: 'small=synthetic:tiny,large=synthetic:medium' }).models).toHaveLength(2);
    expect(() => parseServeArgs(['--model', 'synthetic:tiny', '--model', 'synthetic:tiny'], {})).toThrow(/given twice/);
    expect(() => parseServeArgs(['--model', 'a=x', '--model', 'b=y', '--served-model-name', 'c'], {})).toThrow(/--served-model-name/);
    expect(() => parseServeArgs(['--gpu-memory', 'lots'], {})).toThrow(/--gpu-memory/);
  });
});
