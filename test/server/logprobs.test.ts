// Logprobs, logit bias and penalties through the real server and the official openai client:
// chat's logprobs.content (token, logprob, bytes, top_logprobs) for the tokens the client reads
// as content, the same streamed (spread over the chunks) as not; the legacy completions object
// (tokens, token_logprobs, top_logprobs, text_offset) adding up to the text; Responses'
// include: ["message.output_text.logprobs"] on each output_text part and delta event; a logit
// bias that forces a token. The numbers themselves are checked against float64 in
// test/engine/logits-processing.test.ts and test/gpu/logits-process.test.ts.
import type OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXED_LENGTH, MODEL, startServer, type TestServer } from './helpers.js';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.close();
});

const messages = [{ role: 'user' as const, content: 'Say something.' }];

describe('logprobs', () => {
  it('chat: greedy tokens are their own top logprob; the entries spell the content; streamed the same', async () => {
    const req = { model: MODEL, messages, max_tokens: 24, temperature: 0, logprobs: true, top_logprobs: 3, ...FIXED_LENGTH };
    const r = await s.client.chat.completions.create(req);
    const choice = r.choices[0]!;
    const content = choice.logprobs!.content!;
    expect(content.length).toBeGreaterThan(0);
    for (const e of content) {
      expect(e.logprob).toBeLessThanOrEqual(0);
      expect(e.top_logprobs).toHaveLength(3);
      expect(e.top_logprobs[0]!.token).toBe(e.token);
      expect(e.top_logprobs[0]!.logprob).toBeCloseTo(e.logprob, 5);
      for (let j = 1; j < 3; j++) expect(e.top_logprobs[j]!.logprob).toBeLessThanOrEqual(e.top_logprobs[j - 1]!.logprob);
    }
    // the entries spell the content, up to white space (the server joins messages with a newline
    // and trims the white space random weights put around a header)
    const strip = (x: string) => x.replace(/\s+/g, '');
    expect(strip(Buffer.from(content.flatMap((e) => e.bytes!)).toString('utf8'))).toBe(strip(choice.message.content!));

    const stream = await s.client.chat.completions.create({ ...req, stream: true });
    const streamed: typeof content = [];
    for await (const c of stream) streamed.push(...(c.choices[0]?.logprobs?.content ?? []));
    expect(streamed.map((e) => e.token)).toEqual(content.map((e) => e.token));
    streamed.forEach((e, i) => expect(e.logprob).toBeCloseTo(content[i]!.logprob, 5));

    // without logprobs: null, as OpenAI answers
    const plain = await s.client.chat.completions.create({ model: MODEL, messages, max_tokens: 4 });
    expect(plain.choices[0]!.logprobs).toBeNull();
  });

  it('completions: tokens, token_logprobs, top_logprobs and text_offset add up to the text', async () => {
    const r = await s.client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 16, temperature: 1, seed: 4, logprobs: 2, ...FIXED_LENGTH });
    const c = r.choices[0]!;
    const lp = c.logprobs!;
    expect(lp.tokens!.length).toBe(16);
    expect(lp.top_logprobs!.every((t) => Object.keys(t).length >= 1 && Object.keys(t).length <= 2)).toBe(true);
    expect(lp.token_logprobs!.every((v) => v <= 0)).toBe(true);
    expect(lp.text_offset![0]).toBe(0);
    for (let i = 1; i < lp.tokens!.length; i++) expect(lp.text_offset![i]).toBeGreaterThanOrEqual(lp.text_offset![i - 1]!);
  });

  it('responses: include message.output_text.logprobs puts them on each output_text part and its deltas; streamed the same', async () => {
    const req = { model: MODEL, input: 'Say something.', max_output_tokens: 24, temperature: 0, include: ['message.output_text.logprobs' as const], top_logprobs: 3, ...FIXED_LENGTH };
    const r = await s.client.responses.create(req);
    expect(r.top_logprobs).toBe(3);
    const parts = r.output.flatMap((i) => (i.type === 'message' ? i.content : [])).filter((p) => p.type === 'output_text');
    expect(parts.length).toBeGreaterThan(0);
    const strip = (x: string) => x.replace(/\s+/g, '');
    let entries = 0;
    for (const p of parts) {
      const lps = p.logprobs!;
      entries += lps.length;
      for (const e of lps) {
        expect(e.logprob).toBeLessThanOrEqual(0);
        expect(e.top_logprobs).toHaveLength(3);
        // greedy: the sampled token is its own most likely one
        expect(e.top_logprobs[0]!.token).toBe(e.token);
        expect(e.top_logprobs[0]!.logprob).toBeCloseTo(e.logprob, 5);
      }
      expect(strip(Buffer.from(lps.flatMap((e) => e.bytes)).toString('utf8'))).toBe(strip(p.text));
    }
    expect(entries).toBeGreaterThan(0);

    const deltas: OpenAI.Responses.ResponseTextDeltaEvent.Logprob[] = [];
    let done: OpenAI.Responses.ResponseTextDoneEvent['logprobs'] = [];
    for await (const e of await s.client.responses.create({ ...req, stream: true })) {
      if (e.type === 'response.output_text.delta') deltas.push(...e.logprobs);
      if (e.type === 'response.output_text.done') done = [...done, ...e.logprobs];
    }
    const tokens = parts.flatMap((p) => p.logprobs!.map((e) => e.token));
    expect(deltas.map((e) => e.token)).toEqual(tokens);
    expect(done.map((e) => e.token)).toEqual(tokens);

    // top_logprobs 0: the sampled tokens' own; without include: none, as OpenAI answers
    const bare = await s.client.responses.create({ ...req, top_logprobs: 0 });
    const bareParts = bare.output.flatMap((i) => (i.type === 'message' ? i.content : [])).filter((p) => p.type === 'output_text');
    expect(bareParts.flatMap((p) => p.logprobs!.map((e) => e.token))).toEqual(tokens);
    for (const p of bareParts) for (const e of p.logprobs!) expect(e.top_logprobs).toEqual([]);
    const plain = await s.client.responses.create({ model: MODEL, input: 'Say something.', max_output_tokens: 24, temperature: 0, ...FIXED_LENGTH });
    for (const i of plain.output) if (i.type === 'message') for (const p of i.content) if (p.type === 'output_text') expect(p.logprobs).toEqual([]);
  });

  it('a logit bias of 100 forces its token; penalties are accepted and change a greedy answer', async () => {
    const forced = s.model.host.ready().tokenizer.encodeOrdinary(' banana')[0]!;
    const r = await s.client.completions.create({ model: MODEL, prompt: 'Hello', max_tokens: 5, temperature: 1, logit_bias: { [forced]: 100 }, ...FIXED_LENGTH });
    expect(r.choices[0]!.text).toBe(' banana'.repeat(5));
    const base = { model: MODEL, prompt: 'Hello', max_tokens: 24, temperature: 0, ...FIXED_LENGTH };
    const plain = (await s.client.completions.create(base)).choices[0]!.text;
    const penalised = (await s.client.completions.create({ ...base, frequency_penalty: 2, presence_penalty: 2 })).choices[0]!.text;
    expect(penalised).not.toBe(plain);
  });

  it('completions echo + logprobs: the prompt tokens with their logprobs (the first null), then the completion; each equals the logprob the token gets as the next token of its prefix; streamed the same', async () => {
    const ids = [12194, 11, 495, 382, 261, 1746, 13, 357];
    // the reference: the greedy next token of a prefix and its logprob
    const prefix = ids.slice(0, 5);
    const next = await s.client.completions.create({ model: MODEL, prompt: prefix, max_tokens: 1, temperature: 0, logprobs: 2, ...FIXED_LENGTH });
    const g = next.choices[0]!.logprobs!;
    const prompt = [...prefix, Number.NaN];
    const nextId = (await fetch(s.baseURL.replace('/v1', '/tokenize'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: g.tokens![0] }) }).then((r) => r.json())) as { tokens: number[] };
    expect(nextId.tokens).toHaveLength(1);
    prompt[5] = nextId.tokens[0]!;
    const req = { model: MODEL, prompt, max_tokens: 6, temperature: 0, logprobs: 3, echo: true, ...FIXED_LENGTH };
    const r = await s.client.completions.create(req);
    const lp = r.choices[0]!.logprobs!;
    expect(lp.tokens!.length).toBe(prompt.length + 6);
    expect(lp.token_logprobs![0]).toBeNull();
    expect(lp.top_logprobs![0]).toBeNull();
    for (let p = 1; p < prompt.length; p++) {
      expect(lp.token_logprobs![p]!, `prompt token ${p}`).toBeLessThanOrEqual(0);
      expect(Object.keys(lp.top_logprobs![p]!)).toHaveLength(3);
    }
    expect(lp.token_logprobs![5]!).toBeCloseTo(g.token_logprobs![0]!, 4);
    // offsets: the prompt from 0, the completion after the echoed prompt text
    expect(lp.text_offset![0]).toBe(0);
    const echoed = lp.tokens!.slice(0, prompt.length).join('');
    expect(r.choices[0]!.text.startsWith(echoed)).toBe(true);
    for (let j = 1; j <= prompt.length; j++) expect(lp.text_offset![j]).toBe(lp.text_offset![j - 1]! + lp.tokens![j - 1]!.length);
    // (a stop token run past with ignore_eos has an entry but adds no text)
    for (let j = prompt.length + 1; j < lp.tokens!.length; j++) expect(lp.text_offset![j]).toBeGreaterThanOrEqual(lp.text_offset![j - 1]!);
    // n = 2: the prompt's logprobs (computed once) head both choices
    const two = await s.client.completions.create({ ...req, n: 2, temperature: 1, seed: 3 });
    for (const c of two.choices) {
      expect(c.logprobs!.tokens!.slice(0, prompt.length)).toEqual(lp.tokens!.slice(0, prompt.length));
      c.logprobs!.token_logprobs!.slice(1, prompt.length).forEach((v, j) => expect(v!).toBeCloseTo(lp.token_logprobs![j + 1]!, 4));
      expect(c.text.startsWith(echoed)).toBe(true);
    }
    // streamed: the same entries over the chunks, the echo first
    const stream = await s.client.completions.create({ ...req, stream: true });
    const got: { tokens: string[]; lps: (number | null)[] } = { tokens: [], lps: [] };
    let text = '';
    for await (const c of stream) {
      const l = c.choices[0]?.logprobs;
      text += c.choices[0]?.text ?? '';
      if (l) {
        got.tokens.push(...(l.tokens ?? []));
        got.lps.push(...(l.token_logprobs ?? []));
      }
    }
    expect(text).toBe(r.choices[0]!.text);
    expect(got.tokens).toEqual(lp.tokens);
    got.lps.forEach((v, j) => (j === 0 ? expect(v).toBeNull() : expect(v!).toBeCloseTo(lp.token_logprobs![j]!, 4)));
  });
});
