// Encode throughput of our o200k encoder against gpt-tokenizer, js-tiktoken and the BPE of
// @huggingface/tokenizers, on the same megabyte of mixed text as the equivalence test.
//
//   npx vitest bench bench/tokenizer.bench.ts --run
//
// Each iteration encodes the whole text, so MB/s = hz x the MB in the title. The encoders with a
// merge cache (ours, gpt-tokenizer, Hugging Face) are measured warm, as a server runs them.

import { encode as gptTokenizerEncode } from 'gpt-tokenizer/encoding/o200k_harmony';
import { Tiktoken } from 'js-tiktoken/lite';
import o200kBase from 'js-tiktoken/ranks/o200k_base';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { bench, describe } from 'vitest';
import { mixedText } from '../test/tokenizer/mixed-text.js';
import { testCacheDir, testTokenizer } from '../test/tokenizer/test-tokenizer.js';

const text = mixedText(1_000_000, 20250805);
const megabytes = Buffer.byteLength(text) / 1e6;
const ours = await testTokenizer();
const tiktoken = new Tiktoken(o200kBase);
const hf = new HfTokenizer(JSON.parse(readFileSync(path.join(testCacheDir, 'o200k_harmony-v1', 'tokenizer.json'), 'utf8')) as object, {});
const noSpecials = { disallowedSpecial: new Set<string>() };

describe(`encode ${megabytes.toFixed(3)} MB of mixed text (MB/s = hz x ${megabytes.toFixed(3)})`, () => {
  const options = { time: 3000, iterations: 5 };
  bench('ours (HarmonyTokenizer.encodeOrdinary)', () => void ours.encodeOrdinary(text), options);
  bench('gpt-tokenizer 4.0.0', () => void gptTokenizerEncode(text, noSpecials), options);
  bench('js-tiktoken 1.0.21', () => void tiktoken.encode(text, [], []), options);
  bench('@huggingface/tokenizers 0.2.0 (pre-tokenizer + BPE model)', () => void hf.model!(hf.pre_tokenizer!.pre_tokenize(text)), options);
});
