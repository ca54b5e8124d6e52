// Our encoder against the ordinary o200k encodings of gpt-tokenizer and js-tiktoken, on a
// megabyte of generated mixed-script text, plus the pre-tokenizer against the split regex.

import { encode as gptTokenizerEncode } from 'gpt-tokenizer/encoding/o200k_harmony';
import { Tiktoken } from 'js-tiktoken/lite';
import o200kBase from 'js-tiktoken/ranks/o200k_base';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { HarmonyTokenizer } from '../../src/tokenizer/index.js';
import { O200K_SPLIT_REGEX, splitO200k } from '../../src/tokenizer/o200k-split.js';
import { rng } from '../helpers/random.js';
import { mixedText } from './mixed-text.js';
import { testCacheDir, testTokenizer } from './test-tokenizer.js';

const MEGABYTE = 1_000_000;

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** Index of the first difference, or -1. */
function firstDifference(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

function expectSameIds(ours: number[], theirs: number[], label: string): void {
  const at = firstDifference(ours, theirs);
  // Report a window around the first difference rather than two 300k-element arrays.
  expect(at === -1 ? null : { at, ours: ours.slice(at, at + 8), theirs: theirs.slice(at, at + 8) }, label).toBeNull();
}

describe('encodeOrdinary matches the o200k reference encoders', () => {
  let tokenizer: HarmonyTokenizer;
  let text: string;
  let ours: number[];
  let tiktoken: Tiktoken;

  beforeAll(async () => {
    tokenizer = await testTokenizer();
    tiktoken = new Tiktoken(o200kBase);
    text = mixedText(MEGABYTE, 20250805);
    ours = tokenizer.encodeOrdinary(text);
  });

  it('uses at least a megabyte of mixed text', () => {
    expect(Buffer.byteLength(text)).toBeGreaterThanOrEqual(MEGABYTE);
    const kinds = { english: / the /, cjk: /[\u4e00-\u9fff]{8}/u, arabic: /[\u0621-\u064a]{4}/u, emoji: /\p{Extended_Pictographic}/u, code: /function /, spaces: / {100}/, digits: /\d{100}/ };
    for (const [kind, re] of Object.entries(kinds)) expect(re.test(text), kind).toBe(true);
  });

  it('gives the ids of gpt-tokenizer', () => {
    expectSameIds(ours, gptTokenizerEncode(text, { disallowedSpecial: new Set() }), 'gpt-tokenizer');
  });

  it('gives the ids of js-tiktoken', () => {
    expectSameIds(ours, tiktoken.encode(text, [], []), 'js-tiktoken');
  });

  it('decodes back to the same text', () => {
    expect(tokenizer.decode(ours) === text).toBe(true);
    expect(ours.every((id) => id < 199998)).toBe(true);
  });

  it('matches on many short random strings too (piece boundaries at text edges)', () => {
    const r = rng(7);
    for (let k = 0; k < 2000; k++) {
      let start = Math.floor(r() * (text.length - 200));
      let end = start + 1 + Math.floor(r() * 120);
      // Do not cut a surrogate pair in half.
      if (isLowSurrogate(text.charCodeAt(start))) start++;
      if (isLowSurrogate(text.charCodeAt(end))) end++;
      const s = text.slice(start, end);
      const expected = gptTokenizerEncode(s, { disallowedSpecial: new Set() });
      expect(tokenizer.encodeOrdinary(s), JSON.stringify(s)).toEqual(expected);
      expect(tokenizer.decode(expected)).toBe(s);
    }
  });

  it('encodes lone surrogates like js-tiktoken (as U+FFFD bytes)', () => {
    for (const s of ['a\ud800b', '\udc00', 'x \ud83d', '\ud83d\ud83d\ude00']) {
      expect(tokenizer.encodeOrdinary(s), JSON.stringify(s)).toEqual(tiktoken.encode(s, [], []));
    }
  });

  it('follows tiktoken where JavaScript regexes differ: U+0085 and U+FEFF', () => {
    // Ids from tiktoken 0.14.0 (Rust regex, \s = White_Space) over the same ranks; gpt-tokenizer
    // and js-tiktoken split these differently because JavaScript's \s is another set.
    const tiktoken: Array<[string, number[]]> = [
      ['a\ufeff\ufeffb', [64, 135153, 65]],
      ['x \u0085y', [87, 220, 126, 227, 88]],
      ['x \ufeffy', [87, 71280, 88]],
      ['a\u0085\u0085 b', [64, 126, 227, 126, 227, 287]],
      ['\ufeff\ufeff\n', [5574, 61992]],
      ['p \ufeff\ufeff q', [79, 71280, 5574, 2335]],
    ];
    for (const [s, ids] of tiktoken) expect(tokenizer.encodeOrdinary(s), JSON.stringify(s)).toEqual(ids);
  });

  it("gives the ids of @huggingface/tokenizers' own BPE over the same tokenizer.json", () => {
    // The library's encode() would turn "<|end|>" in text into a special token, so call its
    // pre-tokenizer and model directly: that is ordinary encoding.
    const json: unknown = JSON.parse(readFileSync(path.join(testCacheDir, 'o200k_harmony-v1', 'tokenizer.json'), 'utf8'));
    const hf = new HfTokenizer(json as object, {});
    const sample = text.slice(0, 30_000);
    const pieces: string[] = hf.model!(hf.pre_tokenizer!.pre_tokenize(sample));
    const ids = pieces.map((p) => hf.token_to_id(p)!);
    expectSameIds(tokenizer.encodeOrdinary(sample), ids, '@huggingface/tokenizers');
  });
});

describe('o200k pre-tokenizer', () => {
  it("splits exactly like the split regex (with tiktoken's \\s) on random strings", () => {
    const alphabet = [
      ' ', '  ', '\n', '\r\n', '\r', '\t', '\u00a0', '\u3000', '\ufeff', '\u2028', '\u0085',
      'a', 'B', 'é', 'É', 'ǅ', 'ʰ', 'ﬁ', '中', 'ア', '\u0301', '\u0652', 'ب',
      '1', '٣', '½', 'Ⅻ', "'", "'s", "'LL", "'Re", "'ve", "'d", '/', '.', '!', '-', '_', '$', '<|end|>',
      '😀', '👍🏽', '𝔸', '𝕒', '\ud800', '\udc00', 'Hello', 'WORLD', 'camelCase', 'ٱلْعَرَبِيَّة',
    ];
    const r = rng(3);
    for (let k = 0; k < 20_000; k++) {
      let s = '';
      const n = 1 + Math.floor(r() * 12);
      for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * alphabet.length)];
      const expected = Array.from(s.matchAll(O200K_SPLIT_REGEX), (m) => m[0]);
      expect(splitO200k(s), JSON.stringify(s)).toEqual(expected);
    }
  });

  it('matches gpt-tokenizer on runs thousands of characters long', async () => {
    const tokenizer = await testTokenizer();
    for (const s of [' '.repeat(5000), `a${'\t'.repeat(3000)}b`, `${'\u3000'.repeat(2500)}x`, '!?'.repeat(2000), '7'.repeat(4001), `${'中'.repeat(3000)}.`]) {
      expect(tokenizer.encodeOrdinary(s)).toEqual(gptTokenizerEncode(s, { disallowedSpecial: new Set() }));
    }
  });

  it('keeps long runs together and costs n log n on them', () => {
    const spaces = ' '.repeat(300_000);
    expect(splitO200k(`${spaces}x`)).toEqual([spaces.slice(1), ' x']);
    const started = performance.now();
    // A single 300 kB piece: tiktoken's quadratic merge loop would take minutes here.
    return testTokenizer().then((tokenizer) => {
      const ids = tokenizer.encodeOrdinary(spaces);
      expect(tokenizer.decode(ids)).toBe(spaces);
      expect(performance.now() - started).toBeLessThan(10_000);
    });
  });
});
