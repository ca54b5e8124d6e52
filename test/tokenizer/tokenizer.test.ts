// The README's tokenizer checks, special tokens, streaming decode, and tokenizer.json handling.

import { decode as gptTokenizerDecode } from 'gpt-tokenizer/encoding/o200k_harmony';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HARMONY_STOP_TOKEN_IDS,
  HARMONY_TOKENS,
  HarmonyTokenizer,
  TokenizerError,
  ensureHarmonyTokenizerJson,
  loadModelTokenizer,
  loadTokenizer,
} from '../../src/tokenizer/index.js';
import { sharedDir, testCacheDir, testTokenizer } from './test-tokenizer.js';

interface TokenizerCheck {
  id: string;
  text?: string;
  allowed_special?: string;
  expected_tokens?: number[];
  tokens?: number[];
  expected_text?: string;
  token?: number;
  is_special?: boolean;
  expected_bytes?: number[];
  strict_utf8_decode?: string;
  lossy_decode_contains?: string;
  decode?: string;
}

const index = JSON.parse(readFileSync(path.join(sharedDir, 'harmony', 'vectors', 'index.json'), 'utf8')) as {
  tokenizer_checks: TokenizerCheck[];
};
const specialTokens = JSON.parse(readFileSync(path.join(sharedDir, 'harmony', 'special-tokens.json'), 'utf8')) as {
  harmony_tokens: Record<string, { id: number }>;
  stop_tokens: { sampling_stop_ids_for_assistant: number[]; parser_message_terminators: number[] };
};

let tokenizer: HarmonyTokenizer;
beforeAll(async () => {
  tokenizer = await testTokenizer();
});

describe('tokenizer checks of the README (vectors/index.json)', () => {
  // harmony's Rust table reaches 201088; the checkpoints' (and gpt-tokenizer's) stop at 201087,
  // and the model never samples 201088 (README section 11).
  const ignored = new Set(['decode_reserved_201088']);
  for (const check of index.tokenizer_checks) {
    it(check.id, () => {
      if (ignored.has(check.id)) {
        expect(() => tokenizer.decode(check.tokens!)).toThrow(TokenizerError);
        return;
      }
      if (check.text !== undefined) {
        const ids = check.allowed_special === 'all' ? tokenizer.encodeWithSpecialTokens(check.text) : tokenizer.encodeOrdinary(check.text);
        expect(ids).toEqual(check.expected_tokens);
      } else if (check.expected_text !== undefined) {
        expect(tokenizer.decode(check.tokens!)).toBe(check.expected_text);
      } else if (check.is_special !== undefined) {
        expect(tokenizer.isSpecialToken(check.token!)).toBe(check.is_special);
      } else if (check.expected_bytes !== undefined) {
        expect([...tokenizer.tokenBytes(check.token!)!]).toEqual(check.expected_bytes);
      } else if (check.strict_utf8_decode === 'error') {
        expect(() => tokenizer.decode(check.tokens!, { fatal: true })).toThrow(TokenizerError);
        expect(tokenizer.decode(check.tokens!)).toContain(check.lossy_decode_contains);
      } else if (check.decode === 'error') {
        expect(() => tokenizer.decode(check.tokens!)).toThrow(TokenizerError);
      } else {
        throw new Error(`unhandled check ${check.id}`);
      }
    });
  }
});

describe('special tokens', () => {
  it('have the ids of special-tokens.json and decode like gpt-tokenizer', () => {
    for (const [text, { id }] of Object.entries(specialTokens.harmony_tokens)) {
      expect(tokenizer.specialTokenId(text), text).toBe(id);
      expect(tokenizer.decode([id])).toBe(text);
    }
    for (let id = 199998; id < 201088; id++) expect(tokenizer.decode([id])).toBe(gptTokenizerDecode([id]));
    expect(tokenizer.vocabSize).toBe(201088);
  });

  it('stop sampling on <|return|> and <|call|> only', () => {
    expect([...HARMONY_STOP_TOKEN_IDS].sort()).toEqual([...specialTokens.stop_tokens.sampling_stop_ids_for_assistant].sort());
    expect(HARMONY_STOP_TOKEN_IDS).not.toContain(HARMONY_TOKENS.end);
  });

  it('are never produced from text by encodeOrdinary', () => {
    const text = '<|start|>user<|message|>hi<|end|><|call|><|return|><|constrain|><|channel|><|reserved_200100|><|endoftext|>';
    const ids = tokenizer.encodeOrdinary(text);
    expect(ids.some((id) => tokenizer.isSpecialToken(id))).toBe(false);
    expect(tokenizer.decode(ids)).toBe(text);
  });

  it('are split out everywhere by encodeWithSpecialTokens (not only at position 0)', () => {
    // The README's example of gpt-tokenizer's allowedSpecial bug.
    expect(tokenizer.encodeWithSpecialTokens('<|start|>user<|message|>hi<|end|>')).toEqual([200006, 1428, 200008, 3686, 200007]);
    expect(tokenizer.encodeWithSpecialTokens('a<|end|><|end|>b')).toEqual([...tokenizer.encodeOrdinary('a'), 200007, 200007, ...tokenizer.encodeOrdinary('b')]);
  });
});

describe('streaming decode', () => {
  function deltas(ids: number[]): string[] {
    const decoder = tokenizer.createStreamDecoder();
    return [...ids.map((id) => decoder.push(id)), decoder.flush()];
  }

  it('never emits half a character when one spans tokens', () => {
    const text = '💖 naïve 😊👋🏾👨‍👩‍👧‍👦🇺🇸 中文 عربى';
    const ids = tokenizer.encodeOrdinary(text);
    const out = deltas(ids);
    expect(out.join('')).toBe(text);
    for (const d of out) expect(d.includes('\uFFFD'), JSON.stringify(d)).toBe(false);
    // At least one character really is split across tokens here.
    expect(out.some((d) => d === '')).toBe(true);
  });

  it('waits for the rest of a 2-token emoji', () => {
    const ids = tokenizer.encodeOrdinary('💖');
    expect(ids.length).toBeGreaterThanOrEqual(2);
    const decoder = tokenizer.createStreamDecoder();
    expect(decoder.push(ids[0]!)).toBe('');
    expect(ids.slice(1).map((id) => decoder.push(id)).join('')).toBe('💖');
  });

  it('replaces invalid sequences and unknown ids with U+FFFD', () => {
    expect(deltas([9552, 9552]).join('')).toBe(' \uFFFD \uFFFD');
    expect(deltas([9552, 9552, ...tokenizer.encodeOrdinary('worked')]).join('')).toBe(' \uFFFD \uFFFDworked');
    expect(deltas([...tokenizer.encodeOrdinary('ok'), 4294967295]).join('')).toBe('ok\uFFFD');
  });

  it('keeps a leading byte-order mark', () => {
    expect(deltas(tokenizer.encodeOrdinary('\uFEFFhi')).join('')).toBe('\uFEFFhi');
    expect(tokenizer.decode(tokenizer.encodeOrdinary('\uFEFFhi'))).toBe('\uFEFFhi');
  });
});

describe('tokenizer.json', () => {
  let dir: string;
  let cachedFile: string;
  let bytesOnly: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'tokenizer-json-'));
    cachedFile = path.join(ensureHarmonyTokenizerJson(testCacheDir), 'tokenizer.json');
    // The generated file cut down to the 256 byte tokens: small, yet all the loader's checks apply.
    const json = JSON.parse(readFileSync(cachedFile, 'utf8')) as TokenizerJson;
    json.model.vocab = Object.fromEntries(Object.entries(json.model.vocab).filter(([, id]) => id < 256));
    json.model.merges = [];
    bytesOnly = JSON.stringify(json);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A model folder holding the bytes-only tokenizer.json, changed by edit. */
  function modelFolder(name: string, edit: (json: TokenizerJson) => void = () => {}): string {
    const folder = path.join(dir, name);
    mkdirSync(folder);
    const json = JSON.parse(bytesOnly) as TokenizerJson;
    edit(json);
    writeFileSync(path.join(folder, 'tokenizer.json'), JSON.stringify(json));
    return folder;
  }

  it('is generated offline into a cache folder once, the same every time', () => {
    const folder = ensureHarmonyTokenizerJson(dir);
    const file = path.join(folder, 'tokenizer.json');
    const text = readFileSync(file, 'utf8');
    const json = JSON.parse(text) as TokenizerJson;
    expect(Object.keys(json.model.vocab)).toHaveLength(199998);
    expect(json.model.merges).toHaveLength(199998 - 256);
    expect(json.added_tokens).toHaveLength(201088 - 199998);
    expect(json.model.merges[0]).toEqual(['Ġ', 'Ġ']);
    // The tests' tokenizer is this very file, generated earlier.
    expect(text === readFileSync(cachedFile, 'utf8')).toBe(true);
    const written = statSync(file).mtimeMs;
    expect(ensureHarmonyTokenizerJson(dir)).toBe(folder);
    expect(statSync(file).mtimeMs).toBe(written);
  });

  it('is used for a model folder without one; a folder with one uses its own', async () => {
    const bare = path.join(dir, 'model-without-tokenizer');
    mkdirSync(bare);
    const fallback = await loadModelTokenizer(bare, { cacheDir: testCacheDir });
    expect(fallback.encodeOrdinary('hello world')).toEqual([24912, 2375]);
    expect(existsSync(path.join(bare, 'tokenizer.json'))).toBe(false);
    // Proof that the folder's own file is read: one the loader must reject.
    const own = path.join(dir, 'model-with-tokenizer');
    mkdirSync(own);
    writeFileSync(path.join(own, 'tokenizer.json'), JSON.stringify({ model: { type: 'Unigram' } }));
    await expect(loadModelTokenizer(own, { cacheDir: testCacheDir })).rejects.toThrow(/expected a BPE model/);
  });

  it('rejects files that are not o200k_harmony byte-level BPE', async () => {
    const small = await loadTokenizer(modelFolder('bytes-only'));
    expect(small.encodeOrdinary('hi')).toEqual([71, 72]);
    const gpt2Split = modelFolder('gpt2-split', (json) => {
      json.pre_tokenizer.pretokenizers[0]!.pattern = { Regex: "'s|'t| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+" };
    });
    await expect(loadTokenizer(gpt2Split)).rejects.toThrow(/pre-tokenizer/);
    const noStart = modelFolder('no-start', (json) => {
      json.added_tokens = json.added_tokens.filter((t) => t.content !== '<|start|>');
    });
    await expect(loadTokenizer(noStart)).rejects.toThrow(/<\|start\|>/);
    expect(() => HarmonyTokenizer.fromJson({ model: { type: 'WordPiece' } })).toThrow(TokenizerError);
    expect(() => HarmonyTokenizer.fromJson({ model: { type: 'BPE' } })).toThrow(TokenizerError);
  });

  it('reports a missing file clearly', async () => {
    await expect(loadTokenizer(path.join(dir, 'nowhere'))).rejects.toThrow(/cannot read/);
  });
});

interface TokenizerJson {
  model: { vocab: Record<string, number>; merges: unknown[] };
  added_tokens: Array<{ id: number; content: string }>;
  pre_tokenizer: { pretokenizers: Array<{ pattern?: { Regex: string } }> };
}
