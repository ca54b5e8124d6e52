// The o200k_harmony tokenizer: loadModelTokenizer(modelDir) for a model folder (its own
// tokenizer.json, else the generated one), encodeOrdinary for text, createStreamDecoder for
// streaming output, HARMONY_STOP_TOKEN_IDS for the sampler.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HarmonyTokenizer, loadTokenizer } from './harmony-tokenizer.js';
import { ensureHarmonyTokenizerJson } from './tokenizer-json.js';

export { HarmonyTokenizer, TokenizerError, loadTokenizer, type DecodeOptions } from './harmony-tokenizer.js';
export { Utf8StreamDecoder } from './utf8.js';
export {
  HARMONY_MESSAGE_END_TOKEN_IDS,
  HARMONY_STOP_TOKEN_IDS,
  HARMONY_TOKENS,
  HARMONY_TOKEN_TEXT,
  O200K_HARMONY_VOCAB_SIZE,
} from './special-tokens.js';
export {
  buildHarmonyTokenizerJson,
  defaultCacheDir,
  ensureHarmonyTokenizerJson,
  writeHarmonyTokenizerJson,
} from './tokenizer-json.js';

/**
 * The tokenizer for a model folder: its own tokenizer.json when it has one (real checkpoints),
 * else the generated o200k_harmony one, cached under cacheDir. Both go through loadTokenizer.
 */
export async function loadModelTokenizer(modelDir?: string, options: { cacheDir?: string } = {}): Promise<HarmonyTokenizer> {
  if (modelDir !== undefined && existsSync(join(modelDir, 'tokenizer.json'))) return loadTokenizer(modelDir);
  return loadTokenizer(ensureHarmonyTokenizerJson(options.cacheDir));
}
