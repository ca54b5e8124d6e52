#!/usr/bin/env node
// Writes a random-weight gpt-oss checkpoint in the Hugging Face layout (config.json,
// model.safetensors, and the o200k_harmony tokenizer.json when the vocabulary is the full one),
// for tests of the loader and the server and for offline smoke runs.
//
//   npm run build && node scripts/make-synthetic-checkpoint.mjs OUT_DIR [tiny|mini|20b|120b] [seed] [layers]

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dist = (p) => new URL(`../dist/${p}`, import.meta.url);
if (!existsSync(fileURLToPath(dist('model/synthetic.js')))) {
  console.error('dist/ is missing: run `npm run build` first');
  process.exit(1);
}
const { syntheticConfig, writeSyntheticCheckpoint } = await import(dist('model/synthetic.js').href);
const { writeHarmonyTokenizerJson, O200K_HARMONY_VOCAB_SIZE } = await import(dist('tokenizer/index.js').href);

const [out, shape = 'tiny', seed = '1', layers] = process.argv.slice(2);
if (!out) {
  console.error('usage: node scripts/make-synthetic-checkpoint.mjs OUT_DIR [tiny|mini|20b|120b] [seed] [layers]');
  process.exit(2);
}
const config = syntheticConfig(shape, layers === undefined ? {} : { layers: Number(layers) });
await writeSyntheticCheckpoint(out, config, Number(seed));
if (config.vocabSize === O200K_HARMONY_VOCAB_SIZE) writeHarmonyTokenizerJson(out);
console.log(out);
