// The streaming parser's events for the outputs a server sees, and how it degrades on malformed
// output (warnings in non-strict mode, HarmonyParseError in strict mode).

import { beforeAll, describe, expect, it } from 'vitest';
import {
  HARMONY_STOP_TOKEN_IDS,
  HarmonyParseError,
  HarmonyStreamParser,
  parseHarmonyTokens,
  type HarmonyEvent,
  type StreamParserOptions,
} from '../../src/harmony/index.js';
import type { HarmonyTokenizer } from '../../src/tokenizer/index.js';
import { testTokenizer } from '../tokenizer/test-tokenizer.js';

let tokenizer: HarmonyTokenizer;
beforeAll(async () => {
  tokenizer = await testTokenizer();
});

/** Model output as harmony text (after the prompt's `<|start|>assistant`), fed token by token. */
function feed(output: string, options: StreamParserOptions = {}): { events: HarmonyEvent[]; parser: HarmonyStreamParser } {
  let n = 0;
  const parser = new HarmonyStreamParser(tokenizer, { makeToolCallId: () => `call_${n++}`, ...options });
  const events: HarmonyEvent[] = [];
  for (const t of tokenizer.encodeWithSpecialTokens(output)) events.push(...parser.push(t));
  events.push(...parser.end());
  return { events, parser };
}

/** Events with consecutive deltas of one kind merged, so tests do not depend on token boundaries. */
function merged(events: HarmonyEvent[]): HarmonyEvent[] {
  const out: HarmonyEvent[] = [];
  for (const e of events) {
    const prev = out[out.length - 1];
    if (prev !== undefined && prev.type === e.type && (e.type === 'reasoning_delta' || e.type === 'content_delta' || e.type === 'tool_call_delta')) {
      (prev as { text: string }).text += e.text;
    } else {
      out.push({ ...e });
    }
  }
  return out;
}

describe('events', () => {
  it('reasoning, then the final answer ending in <|return|>', () => {
    const { events, parser } = feed('<|channel|>analysis<|message|>User says hi. Reply.<|end|><|start|>assistant<|channel|>final<|message|>Hello! 👋<|return|>');
    expect(merged(events)).toEqual([
      { type: 'message_start', header: { role: 'assistant', channel: 'analysis' } },
      { type: 'reasoning_delta', text: 'User says hi. Reply.' },
      { type: 'message_end', message: { role: 'assistant', channel: 'analysis', content: 'User says hi. Reply.' }, terminator: 'end', finishReason: null },
      { type: 'message_start', header: { role: 'assistant', channel: 'final' } },
      { type: 'content_delta', text: 'Hello! 👋', channel: 'final' },
      { type: 'message_end', message: { role: 'assistant', channel: 'final', content: 'Hello! 👋' }, terminator: 'return', finishReason: 'stop' },
    ]);
    expect(parser.finishReason).toBe('stop');
    expect(parser.warnings).toEqual([]);
  });

  it('a tool call in the order the model writes it (channel first)', () => {
    const { events, parser } = feed(
      '<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location":"SF"}<|call|>',
    );
    const calls = merged(events).filter((e) => e.type.startsWith('tool_call'));
    expect(calls).toEqual([
      { type: 'tool_call_start', index: 0, id: 'call_0', name: 'get_weather', recipient: 'functions.get_weather', channel: 'commentary', contentType: '<|constrain|>json' },
      { type: 'tool_call_delta', index: 0, id: 'call_0', text: '{"location":"SF"}' },
      { type: 'tool_call_end', index: 0, id: 'call_0', name: 'get_weather', arguments: '{"location":"SF"}' },
    ]);
    expect(events[events.length - 1]).toMatchObject({ type: 'message_end', terminator: 'call', finishReason: 'tool_calls' });
    expect(parser.finishReason).toBe('tool_calls');
  });

  it('a tool call in the order the library renders it (recipient first), on analysis too', () => {
    const { events } = feed('<|channel|>analysis to=functions.lookup json<|message|>{}<|call|>');
    expect(events.find((e) => e.type === 'tool_call_start')).toMatchObject({ name: 'lookup', recipient: 'functions.lookup', channel: 'analysis', contentType: 'json' });
    const { events: second } = feed(' to=functions.lookup<|channel|>commentary<|constrain|>json<|message|>{}<|call|>');
    expect(second.find((e) => e.type === 'tool_call_start')).toMatchObject({ name: 'lookup', channel: 'commentary', contentType: '<|constrain|>json' });
  });

  it('numbers tool calls within the response and gives each a fresh id by default', () => {
    const { events } = feed('<|channel|>commentary to=functions.a<|message|>{}<|call|><|start|>assistant<|channel|>commentary to=functions.b<|message|>{}<|call|>', {
      makeToolCallId: undefined,
    });
    const starts = events.filter((e) => e.type === 'tool_call_start') as Array<{ index: number; id: string; name: string }>;
    expect(starts.map((s) => [s.index, s.name])).toEqual([
      [0, 'a'],
      [1, 'b'],
    ]);
    for (const s of starts) expect(s.id).toMatch(/^call_[0-9a-f]{24}$/);
    expect(starts[0]!.id).not.toBe(starts[1]!.id);
  });

  it('treats a recipient starting with <| as a content type (structured output)', () => {
    const { events, parser } = feed('<|channel|>final <|constrain|>json<|message|>{"a":1}<|return|>');
    expect(events.some((e) => e.type === 'tool_call_start')).toBe(false);
    expect(merged(events)).toContainEqual({ type: 'content_delta', text: '{"a":1}', channel: 'final' });
    expect(parser.messages).toEqual([{ role: 'assistant', channel: 'final', contentType: '<|constrain|>json', content: '{"a":1}' }]);
  });

  it('streams a commentary preamble as content with its channel', () => {
    const { events } = feed('<|channel|>commentary<|message|>Let me check.<|end|><|start|>assistant<|channel|>commentary to=functions.f<|message|>{}<|call|>');
    expect(merged(events)).toContainEqual({ type: 'content_delta', text: 'Let me check.', channel: 'commentary' });
  });

  it('does not stop or finish on <|end|>, which only closes a message', () => {
    expect(HARMONY_STOP_TOKEN_IDS).toEqual([200002, 200012]);
    const { parser } = feed('<|channel|>analysis<|message|>a<|end|>');
    expect(parser.finishReason).toBeNull();
  });

  it('reports a message cut by the end of the stream (length limit) with no terminator', () => {
    const { events } = feed('<|channel|>final<|message|>Once upon a');
    expect(events[events.length - 1]).toMatchObject({ type: 'message_end', terminator: null, finishReason: null, message: { content: 'Once upon a' } });
  });

  it('gives messages from other authors no deltas', () => {
    const { events, parser } = feed('<|start|>functions.f to=assistant<|channel|>commentary<|message|>{"ok":true}<|end|>', { role: null });
    expect(events.filter((e) => e.type.endsWith('_delta'))).toEqual([]);
    expect(parser.messages).toEqual([{ role: 'tool', name: 'functions.f', recipient: 'assistant', channel: 'commentary', content: '{"ok":true}' }]);
  });
});

describe('malformed output', () => {
  const cases: Array<{ name: string; output: string; role?: null; messages: unknown[] }> = [
    {
      name: 'a missing <|start|> after <|end|>',
      output: '<|channel|>analysis<|message|>think<|end|><|channel|>final<|message|>Hi<|return|>',
      messages: [
        { role: 'assistant', channel: 'analysis', content: 'think' },
        { role: 'assistant', channel: 'final', content: 'Hi' },
      ],
    },
    {
      name: 'plain text where <|start|> was expected',
      output: '<|channel|>analysis<|message|>think<|end|>Hello there<|return|>',
      messages: [
        { role: 'assistant', channel: 'analysis', content: 'think' },
        { role: 'assistant', content: 'Hello there' },
      ],
    },
    {
      name: 'a stray end token between messages',
      output: '<|channel|>final<|message|>Hi<|end|><|end|>',
      messages: [{ role: 'assistant', channel: 'final', content: 'Hi' }],
    },
    {
      name: 'an unknown role',
      output: '<|start|>robot<|message|>beep<|end|>',
      role: null,
      messages: [{ role: 'assistant', content: 'beep' }],
    },
    {
      name: 'words left over in the header',
      output: '<|channel|>final one two three<|message|>Hi<|return|>',
      messages: [{ role: 'assistant', channel: 'final', content: 'Hi' }],
    },
    {
      name: 'an empty channel',
      output: '<|channel|><|message|>Hi<|return|>',
      messages: [{ role: 'assistant', content: 'Hi' }],
    },
    {
      name: 'the stream ending inside a header',
      output: '<|channel|>final Hello world',
      messages: [{ role: 'assistant', channel: 'final', content: 'Hello world' }],
    },
    {
      name: 'a missing <|message|> in a later message (role not known in advance)',
      output: '<|channel|>analysis<|message|>a<|end|><|start|>assistant<|channel|>final Hello<|return|>',
      messages: [
        { role: 'assistant', channel: 'analysis', content: 'a' },
        { role: 'assistant', channel: 'final', content: 'Hello' },
      ],
    },
  ];

  for (const c of cases) {
    it(`recovers from ${c.name} with a warning`, () => {
      const options = c.role === null ? { role: null } : {};
      const { events, parser } = feed(c.output, options);
      expect(parser.messages).toEqual(c.messages);
      expect(parser.warnings.length).toBeGreaterThan(0);
      expect(events.filter((e) => e.type === 'warning').map((e) => (e as { message: string }).message)).toEqual(parser.warnings);
      expect(() => feed(c.output, { ...options, strict: true })).toThrow(HarmonyParseError);
    });
  }

  it('streams text where a header was expected, once it cannot be a header (more than 3 words)', () => {
    // A model that never writes <|message|> (random weights do this) would otherwise send all
    // of its answer at the end, as the header's recovered words.
    const ids = tokenizer.encodeOrdinary('Hello there my friend, how are you today?');
    const parser = new HarmonyStreamParser(tokenizer);
    const perToken = ids.map((t) => parser.push(t));
    perToken.push(parser.end());
    const firstText = perToken.findIndex((ev) => ev.some((e) => e.type === 'content_delta'));
    // Held back only until the fourth word ("friend,") arrives...
    expect(tokenizer.decode(ids.slice(0, firstText + 1))).toBe('Hello there my friend');
    expect(perToken[firstText]!.filter((e) => e.type === 'content_delta')).toEqual([{ type: 'content_delta', text: 'Hello there my friend' }]);
    // ...then each token is a delta of its own.
    for (let i = firstText + 1; i < ids.length; i++) {
      expect(perToken[i]!.filter((e) => e.type === 'content_delta')).toEqual([{ type: 'content_delta', text: tokenizer.decode([ids[i]!]) }]);
    }
    expect(parser.messages).toEqual([{ role: 'assistant', content: 'Hello there my friend, how are you today?' }]);
    expect(parser.warnings.length).toBeGreaterThan(0);
    // A channel given before the words is kept; a long unbroken word is text too.
    expect(feed('<|channel|>analysis Thinking about it a lot').parser.messages).toEqual([{ role: 'assistant', channel: 'analysis', content: 'Thinking about it a lot' }]);
    expect(feed('x'.repeat(300)).parser.messages).toEqual([{ role: 'assistant', content: 'x'.repeat(300) }]);
    // Real headers are untouched, the longest form included.
    expect(feed('<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{}<|call|>').parser.warnings).toEqual([]);
    expect(() => feed('Hello there my friend, how are you today?', { strict: true })).toThrow(HarmonyParseError);
  });

  it('never turns special or reserved tokens into text', () => {
    const reserved = '<|reserved_200020|>';
    expect(tokenizer.encodeWithSpecialTokens(reserved)).toEqual([200020]);
    const inContent = feed(`<|channel|>final<|message|>a${reserved}b<|endoftext|>c<|constrain|><|message|><|channel|>d<|return|>`);
    expect(inContent.parser.messages).toEqual([{ role: 'assistant', channel: 'final', content: 'abcd' }]);
    // <|start|> inside a message ends it (a missing <|end|>) and starts the next.
    expect(feed('<|channel|>analysis<|message|>think<|start|>assistant<|channel|>final<|message|>Hi<|return|>').parser.messages).toEqual([
      { role: 'assistant', channel: 'analysis', content: 'think' },
      { role: 'assistant', channel: 'final', content: 'Hi' },
    ]);
    // In a header: a reserved token means it is no header; what was read is text, without it.
    expect(feed(`<|channel|>final Hi${reserved} there`).parser.messages).toEqual([{ role: 'assistant', channel: 'final', content: 'Hi there' }]);
    // A header cut off by the end of the stream (a length limit) is recovered without <|constrain|>.
    expect(feed('<|channel|>commentary to=functions.get_weather <|constrain|>json').parser.messages).toEqual([
      { role: 'assistant', channel: 'commentary', content: 'to=functions.get_weather json' },
    ]);
    // Strict mode keeps the library's behaviour (the token's text).
    expect(feed(`<|channel|>final<|message|>a${reserved}<|return|>`, { strict: true }).parser.messages[0]!.content).toBe(`a${reserved}`);
  });

  it('writes U+FFFD for ids outside the vocabulary, in content and headers', () => {
    const ids = [...tokenizer.encodeWithSpecialTokens('<|channel|>final<|message|>a'), 999_999, ...tokenizer.encodeOrdinary('b'), 200002];
    expect(parseHarmonyTokens(tokenizer, ids).messages[0]!.content).toBe('a\uFFFDb');
    const header = [200005, 999_999, 200008, ...tokenizer.encodeOrdinary('x')];
    expect(parseHarmonyTokens(tokenizer, header).messages[0]).toEqual({ role: 'assistant', channel: '\uFFFD', content: 'x' });
    expect(() => parseHarmonyTokens(tokenizer, header, { strict: true })).toThrow(HarmonyParseError);
  });
});
