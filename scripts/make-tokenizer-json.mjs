#!/usr/bin/env node
// Writes the o200k_harmony tokenizer.json, generated offline from the ranks gpt-tokenizer ships,
// into a model folder that has none (our synthetic models), so every model loads its tokenizer
// the same way. Without a folder it fills the cache the server falls back to.
//
//   npm run build && node scripts/make-tokenizer-json.mjs path/to/model-folder

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/tokenizer/tokenizer-json.js', import.meta.url);
if (!existsSync(fileURLToPath(compiled))) {
  console.error('dist/ is missing: run `npm run build` first');
  process.exit(1);
}
const { ensureHarmonyTokenizerJson, writeHarmonyTokenizerJson } = await import(compiled.href);

const folder = process.argv[2];
const written = folder === undefined ? `${ensureHarmonyTokenizerJson()}/tokenizer.json` : writeHarmonyTokenizerJson(folder);
console.log(written);
