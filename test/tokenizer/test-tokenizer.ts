// The tokenizer the tests use: the generated o200k_harmony tokenizer.json (cached in the
// repository's ignored .cache/), loaded the way production loads any tokenizer.json.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureHarmonyTokenizerJson, loadTokenizer, type HarmonyTokenizer } from '../../src/tokenizer/index.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const sharedDir = path.resolve(repoRoot, '..', 'shared');
export const testCacheDir = path.join(repoRoot, '.cache');

let loading: Promise<HarmonyTokenizer> | undefined;

export function testTokenizer(): Promise<HarmonyTokenizer> {
  loading ??= loadTokenizer(ensureHarmonyTokenizerJson(testCacheDir));
  return loading;
}
