// o200k_harmony tokenizer, loaded from a tokenizer.json through @huggingface/tokenizers.
//
// The Hugging Face library parses and validates the file and owns the vocabulary; encoding runs on
// our own BPE over that vocabulary (ids are tiktoken ranks), which is several times faster and
// gives the tiktoken ids exactly. Text is always encoded as ordinary text: special-token ids come
// only from the renderer, never from a user's "<|end|>".

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { ByteTokenTable, BytePairMerger } from './bpe.js';
import { byteLevelToBytes, bytesToByteLevel } from './byte-level.js';
import { o200kPieceEnd, splitO200k } from './o200k-split.js';
import { HARMONY_TOKENS, HARMONY_TOKEN_TEXT } from './special-tokens.js';
import { Utf8StreamDecoder, encodeUtf8Into } from './utf8.js';

const MERGE_CACHE_ENTRIES = 50_000;
const MERGE_CACHE_MAX_PIECE = 128;

export class TokenizerError extends Error {
  override name = 'TokenizerError';
}

export interface DecodeOptions {
  /** Throw on invalid UTF-8 instead of writing U+FFFD. */
  fatal?: boolean;
}

export class HarmonyTokenizer {
  private readonly merger: BytePairMerger;
  private readonly specialBytes = new Map<number, Uint8Array>();
  private readonly specialRegex: RegExp;
  private scratch = new Uint8Array(1024);
  /** Merge results of pieces that are not single tokens; text repeats words a lot. */
  private readonly mergeCache = new Map<string, number[]>();

  private constructor(
    private readonly ordinary: ByteTokenTable,
    private readonly specials: ReadonlyMap<string, number>,
    /** One more than the largest id. */
    readonly vocabSize: number,
  ) {
    this.merger = new BytePairMerger(ordinary);
    const utf8 = new TextEncoder();
    for (const [content, id] of specials) this.specialBytes.set(id, utf8.encode(content));
    const alternatives = [...specials.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
    this.specialRegex = new RegExp(alternatives.join('|'), 'g');
  }

  /**
   * Builds the tokenizer from a parsed tokenizer.json (and tokenizer_config.json, if any). Throws
   * TokenizerError when the file is not a byte-level BPE with the o200k split.
   */
  static fromJson(tokenizerJson: unknown, tokenizerConfig: unknown = {}): HarmonyTokenizer {
    const model = (tokenizerJson as { model?: { type?: string } } | null)?.model;
    if (model?.type !== 'BPE') throw new TokenizerError('tokenizer.json: expected a BPE model');
    let hf: HfTokenizer;
    try {
      hf = new HfTokenizer(tokenizerJson as object, tokenizerConfig as object);
    } catch (e) {
      throw new TokenizerError(`tokenizer.json: ${(e as Error).message}`);
    }

    const added = hf.get_added_tokens_decoder();
    const specials = new Map<string, number>();
    for (const [id, token] of added) specials.set(token.content, id);
    // The model's vocabulary by id; the library has put the added tokens in it too.
    const vocab = hf.model?.vocab ?? [];
    const tokens: Array<Uint8Array | undefined> = [];
    for (let id = 0; id < vocab.length; id++) {
      const text = vocab[id];
      if (text === undefined || added.has(id)) continue;
      const bytes = byteLevelToBytes(text);
      if (bytes === undefined) throw new TokenizerError(`tokenizer.json: token ${id} is not byte-level`);
      tokens[id] = bytes;
    }
    const vocabSize = vocab.length;
    for (const [key, text] of Object.entries(HARMONY_TOKEN_TEXT)) {
      const expected = HARMONY_TOKENS[key as keyof typeof HARMONY_TOKEN_TEXT];
      if (specials.get(text) !== expected) throw new TokenizerError(`tokenizer.json: ${text} is not token ${expected}; not o200k_harmony`);
    }
    const tokenizer = new HarmonyTokenizer(new ByteTokenTable(tokens), specials, vocabSize);
    tokenizer.checkPreTokenizer(hf);
    return tokenizer;
  }

  /** Ordinary BPE encoding: special-token text is encoded as plain text. */
  encodeOrdinary(text: string, out: number[] = []): number[] {
    for (let i = 0; i < text.length; ) {
      const end = o200kPieceEnd(text, i);
      if (this.scratch.length < (end - i) * 3) this.scratch = new Uint8Array((end - i) * 6);
      const buf = this.scratch;
      const len = encodeUtf8Into(text, i, end, buf);
      const id = this.ordinary.get(buf, 0, len);
      if (id >= 0) out.push(id);
      else this.mergePiece(text, i, end, buf, len, out);
      i = end;
    }
    return out;
  }

  /** BPE of the piece text[start, end), whose UTF-8 is buf[0, len), appended to out. */
  private mergePiece(text: string, start: number, end: number, buf: Uint8Array, len: number, out: number[]): void {
    if (end - start > MERGE_CACHE_MAX_PIECE) {
      this.merger.encode(buf, len, out);
      return;
    }
    const piece = text.slice(start, end);
    let ids = this.mergeCache.get(piece);
    if (ids === undefined) {
      ids = [];
      this.merger.encode(buf, len, ids);
      if (this.mergeCache.size >= MERGE_CACHE_ENTRIES) this.mergeCache.clear();
      this.mergeCache.set(piece, ids);
    }
    for (const id of ids) out.push(id);
  }

  /**
   * Encoding with every special-token string mapped to its id (tiktoken's allowed_special="all").
   * Only for text that is harmony-formatted on purpose: raw prompts and test vectors.
   */
  encodeWithSpecialTokens(text: string): number[] {
    const out: number[] = [];
    let at = 0;
    for (const m of text.matchAll(this.specialRegex)) {
      this.encodeOrdinary(text.slice(at, m.index), out);
      out.push(this.specials.get(m[0])!);
      at = m.index + m[0].length;
    }
    return this.encodeOrdinary(text.slice(at), out);
  }

  /** Bytes of one token (special tokens give their text), or undefined for an unknown id. */
  tokenBytes(id: number): Uint8Array | undefined {
    return this.ordinary.bytes(id) ?? this.specialBytes.get(id);
  }

  decodeBytes(ids: readonly number[]): Uint8Array {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (const id of ids) {
      const bytes = this.tokenBytes(id);
      if (bytes === undefined) throw new TokenizerError(`unknown token id ${id}`);
      parts.push(bytes);
      total += bytes.length;
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** Text of ids; invalid UTF-8 becomes U+FFFD unless fatal. Throws on an unknown id. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const decoder = new TextDecoder('utf-8', { fatal: options.fatal ?? false, ignoreBOM: true });
    try {
      return decoder.decode(this.decodeBytes(ids));
    } catch (e) {
      if (e instanceof TokenizerError) throw e;
      throw new TokenizerError(`token ids do not decode to valid UTF-8: ${(e as Error).message}`);
    }
  }

  /** Incremental decoder for streaming: never emits half a character. */
  createStreamDecoder(): Utf8StreamDecoder {
    return new Utf8StreamDecoder((id) => this.tokenBytes(id));
  }

  /** The id of a special token such as "<|start|>", or undefined. */
  specialTokenId(content: string): number | undefined {
    return this.specials.get(content);
  }

  isSpecialToken(id: number): boolean {
    return this.specialBytes.has(id);
  }

  /**
   * Our encoder hard-codes the o200k split. Instead of comparing regex spellings, run the file's
   * own pre-tokenizer on a probe that exercises every branch of the pattern and compare pieces.
   */
  private checkPreTokenizer(hf: HfTokenizer): void {
    const probe =
      "Hello WORLD they'RE x'll  \t\n\r\n  end  ) (ok) 12345 ½Ⅻ ١٢٣ 中文字 Ünïcödé é\u0301 ʰi " +
      "naïve— 'tis ?!/\n/ x\u00a0y\u3000z 😀👍🏽 \ud835\udd38\ud835\udd52 ǅa ABCdef\r\r\n \n";
    const theirs = hf.pre_tokenizer?.pre_tokenize(probe) ?? [probe];
    const utf8 = new TextEncoder();
    const ours = splitO200k(probe).map((p) => bytesToByteLevel(utf8.encode(p)));
    if (JSON.stringify(theirs) !== JSON.stringify(ours)) {
      throw new TokenizerError('tokenizer.json: the pre-tokenizer does not split text like o200k');
    }
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

/** Loads dir/tokenizer.json (and dir/tokenizer_config.json when present). */
export async function loadTokenizer(dir: string): Promise<HarmonyTokenizer> {
  const file = join(dir, 'tokenizer.json');
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new TokenizerError(`cannot read ${file}: ${(e as Error).message}`);
  }
  const configFile = join(dir, 'tokenizer_config.json');
  const config: unknown = existsSync(configFile) ? JSON.parse(await readFile(configFile, 'utf8')) : {};
  return HarmonyTokenizer.fromJson(json, config);
}
