// Fuzzing the streaming parser: random token sequences and random mutations of well-formed
// outputs. Non-strict mode must never throw, its events must stay consistent and its text never
// holds a special token; strict mode may only throw HarmonyParseError.

import { beforeAll, describe, expect, it } from 'vitest';
import { HarmonyParseError, HarmonyStreamParser, type HarmonyEvent, type ParsedMessage } from '../../src/harmony/index.js';
import type { HarmonyTokenizer } from '../../src/tokenizer/index.js';
import { rng } from '../helpers/random.js';
import { testTokenizer } from '../tokenizer/test-tokenizer.js';

const WELL_FORMED = [
  '<|channel|>analysis<|message|>User asks 2+2. Answer 4.<|end|><|start|>assistant<|channel|>final<|message|>2 + 2 = 4.<|return|>',
  '<|channel|>analysis<|message|>Need weather 🌤️.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location":"東京"}<|call|>',
  ' to=functions.lookup<|channel|>commentary<|constrain|>json<|message|>{"q": "x"}<|call|>',
  '<|channel|>commentary<|message|>Checking…<|end|><|start|>assistant<|channel|>commentary to=functions.f json<|message|>{}<|call|>',
  '<|channel|>final <|constrain|>json<|message|>{"answer": [1, 2, 3]}<|return|>',
  '<|channel|>analysis to=browser.search code<|message|>{"query": "news"}<|call|>',
  '<|channel|>final<|message|>مرحبا 👋🏽 naïve<|return|>',
];

let tokenizer: HarmonyTokenizer;
let wellFormed: number[][];
let vocabulary: number[];

beforeAll(async () => {
  tokenizer = await testTokenizer();
  wellFormed = WELL_FORMED.map((t) => tokenizer.encodeWithSpecialTokens(t));
  // Tokens that matter to the parser, and pieces of headers, weighted by repetition.
  const headerWords = ['assistant', 'user', 'tool', ' to=', 'functions.x', ' json', 'analysis', 'final', 'commentary', ' ', '<|', '=', 'to'];
  vocabulary = [
    ...[200002, 200003, 200005, 200006, 200007, 200008, 200012].flatMap((t) => [t, t, t]),
    199998, 199999, 200000, 200018, 201087,
    ...headerWords.flatMap((w) => tokenizer.encodeOrdinary(w)),
    9552, // a token ending in half a character
  ];
});

function randomToken(r: () => number): number {
  const x = r();
  if (x < 0.55) return vocabulary[Math.floor(r() * vocabulary.length)]!;
  if (x < 0.9) return Math.floor(r() * 199998);
  if (x < 0.95) return 199998 + Math.floor(r() * 1090);
  // Ids no vocabulary has, and values no sampler should produce.
  return [201088, 2 ** 32 - 1, -1, 1.5, Number.NaN, 1e21][Math.floor(r() * 6)]!;
}

function mutate(r: () => number, tokens: number[]): number[] {
  const out = [...tokens];
  const edits = 1 + Math.floor(r() * 4);
  for (let k = 0; k < edits; k++) {
    const at = Math.floor(r() * (out.length + 1));
    switch (Math.floor(r() * 6)) {
      case 0:
        out.splice(at, 1);
        break;
      case 1:
        out.splice(at, 0, randomToken(r));
        break;
      case 2:
        out[Math.min(at, out.length - 1)] = randomToken(r);
        break;
      case 3:
        out.splice(at, 0, ...out.slice(at, at + 1 + Math.floor(r() * 5)));
        break;
      case 4:
        out.length = at;
        break;
      default: {
        const other = wellFormed[Math.floor(r() * wellFormed.length)]!;
        out.splice(at, 0, ...other.slice(0, Math.floor(r() * other.length)));
      }
    }
  }
  return out;
}

/** A plain assertion: vitest's expect is too slow for hundreds of thousands of events. */
function check(ok: boolean, what: string, tokens: number[]): void {
  if (!ok) throw new Error(`${what} for tokens ${JSON.stringify(tokens)}`);
}

/** Non-strict run: never throws; every message's deltas add up to its content; no delta holds a special token's text. */
function checkNonStrict(tokens: number[], role: 'assistant' | null): void {
  const parser = new HarmonyStreamParser(tokenizer, { role });
  const events: HarmonyEvent[] = [];
  for (const t of tokens) events.push(...parser.push(t));
  events.push(...parser.end());

  const ended: ParsedMessage[] = [];
  let text = '';
  let open = false;
  for (const e of events) {
    if (e.type === 'message_start') {
      check(!open, 'message_start inside a message', tokens);
      open = true;
      text = '';
    } else if (e.type === 'reasoning_delta' || e.type === 'content_delta' || e.type === 'tool_call_delta') {
      check(open, 'delta outside a message', tokens);
      check(!/<\|(?:reserved_\d+|[a-z]+)\|>/.test(e.text), `special token text in a delta: ${JSON.stringify(e.text)}`, tokens);
      text += e.text;
    } else if (e.type === 'message_end') {
      check(open, 'message_end outside a message', tokens);
      open = false;
      if (e.message.role === 'assistant') check(text === e.message.content, 'deltas differ from the content', tokens);
      ended.push(e.message);
    }
  }
  check(!open, 'a message left open after end()', tokens);
  check(parser.messages.length === ended.length && parser.messages.every((m, i) => m === ended[i]), 'messages differ from message_end events', tokens);
}

function checkStrict(tokens: number[], role: 'assistant' | null): void {
  const parser = new HarmonyStreamParser(tokenizer, { role, strict: true });
  try {
    for (const t of tokens) parser.push(t);
    parser.end();
  } catch (e) {
    if (!(e instanceof HarmonyParseError)) throw e;
  }
}

describe('parser fuzz', () => {
  it('survives 6000 random token sequences', () => {
    const r = rng(11);
    for (let k = 0; k < 6000; k++) {
      const tokens = Array.from({ length: Math.floor(r() * 60) }, () => randomToken(r));
      const role = r() < 0.5 ? 'assistant' : null;
      checkNonStrict(tokens, role);
      checkStrict(tokens, role);
    }
  });

  it('survives 6000 mutations of well-formed outputs', () => {
    const r = rng(12);
    for (let k = 0; k < 6000; k++) {
      const base = wellFormed[k % wellFormed.length]!;
      const tokens = mutate(r, base);
      checkNonStrict(tokens, 'assistant');
      checkStrict(tokens, 'assistant');
      // The same output after the prompt's <|start|> was not written.
      checkNonStrict([200006, ...tokenizer.encodeOrdinary('assistant'), ...tokens], null);
    }
  });

  it('parses every unmutated output without warnings', () => {
    for (const tokens of wellFormed) {
      const parser = new HarmonyStreamParser(tokenizer, { strict: true });
      for (const t of tokens) parser.push(t);
      parser.end();
      expect(parser.warnings).toEqual([]);
      expect(parser.messages.length).toBeGreaterThan(0);
    }
  });
});
