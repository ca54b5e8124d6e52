// The o200k pre-tokenizer: splits text into the pieces that BPE then encodes one by one.
//
// It is a hand-written scanner for the regex below (the one tiktoken, openai/harmony and the
// gpt-oss tokenizer.json use); running the regex itself costs more than the whole BPE. It follows
// tiktoken's Rust regex, where \s is Unicode White_Space: JavaScript's \s differs on U+0085
// (not space in JS) and U+FEFF (space in JS), which is the one place where gpt-tokenizer and
// js-tiktoken split differently from tiktoken. test/tokenizer checks the scanner against the regex.

/** The split pattern as written in tokenizer.json (Rust/Oniguruma syntax). */
export const O200K_SPLIT_PATTERN =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?" +
  "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?" +
  '|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';

/** Unicode White_Space, what \s means in tiktoken's regex. */
const WHITE_SPACE = '\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

/** The same pattern as a JavaScript RegExp with tiktoken's meaning (for tests and tools). */
export const O200K_SPLIT_REGEX = new RegExp(
  O200K_SPLIT_PATTERN.replaceAll("(?i:'s|'t|'re|'ve|'m|'ll|'d)", "(?:'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))")
    .replaceAll('[^\\s', `[^${WHITE_SPACE}`)
    .replaceAll('\\s', `[${WHITE_SPACE}]`)
    .replaceAll('\\S', `[^${WHITE_SPACE}]`),
  'gu',
);

// Character classes of the pattern, one bit each.
const LETTER = 1; // \p{L}
const UPPERISH = 2; // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
const LOWERISH = 4; // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
const NUMBER = 8; // \p{N}
const SPACE = 16; // \s: White_Space

const CLASS_TESTS: Array<[number, RegExp]> = [
  [LETTER, /^\p{L}$/u],
  [UPPERISH, /^[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]$/u],
  [LOWERISH, /^[\p{Ll}\p{Lm}\p{Lo}\p{M}]$/u],
  [NUMBER, /^\p{N}$/u],
  [SPACE, new RegExp(`^[${WHITE_SPACE}]$`, 'u')],
];

// Classes are computed from the engine's own Unicode tables, 256 code points at a time, on first
// use: most text touches a handful of blocks.
const blocks: Array<Uint8Array | undefined> = new Array(0x110000 >> 8);

function fillBlock(b: number): Uint8Array {
  const block = new Uint8Array(256);
  for (let k = 0; k < 256; k++) {
    const ch = String.fromCodePoint((b << 8) | k);
    let f = 0;
    for (const [bit, re] of CLASS_TESTS) if (re.test(ch)) f |= bit;
    block[k] = f;
  }
  blocks[b] = block;
  return block;
}

function classOf(cp: number): number {
  const block = blocks[cp >> 8] ?? fillBlock(cp >> 8);
  return block[cp & 255]!;
}

/** Code point at i; a lone surrogate stands for itself, as in a `u` regex. */
function codePointAt(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
    const d = s.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
  }
  return c;
}

/** End of the run from p of code points whose class has a bit of mask. */
function runOf(s: string, p: number, mask: number): number {
  const n = s.length;
  while (p < n) {
    const cp = codePointAt(s, p);
    if ((classOf(cp) & mask) === 0) break;
    p += cp > 0xffff ? 2 : 1;
  }
  return p;
}

/** End of the run from p of code points with no bit of mask. */
function runWithout(s: string, p: number, mask: number): number {
  const n = s.length;
  while (p < n) {
    const cp = codePointAt(s, p);
    if ((classOf(cp) & mask) !== 0) break;
    p += cp > 0xffff ? 2 : 1;
  }
  return p;
}

/** `U*L+` from j (first alternative's body), with the regex's backtracking; -1 if no match. */
function lowerWordEnd(s: string, j: number): number {
  const n = s.length;
  let p = j;
  let lastLowerEnd = -1;
  while (p < n) {
    const cp = codePointAt(s, p);
    const f = classOf(cp);
    if ((f & UPPERISH) === 0) break;
    p += cp > 0xffff ? 2 : 1;
    if (f & LOWERISH) lastLowerEnd = p;
  }
  if (p < n && classOf(codePointAt(s, p)) & LOWERISH) return runOf(s, p, LOWERISH);
  // Backtracking gives the upper run's last lower-class code point to `L+`.
  return lastLowerEnd;
}

/** `U+L*` from j (second alternative's body); -1 if no match. */
function upperWordEnd(s: string, j: number): number {
  if (j >= s.length || (classOf(codePointAt(s, j)) & UPPERISH) === 0) return -1;
  return runOf(s, runOf(s, j, UPPERISH), LOWERISH);
}

/** Extends e over an English contraction suffix ('s 't 're 've 'm 'll 'd, any case). */
function contractionEnd(s: string, e: number): number {
  if (e + 1 >= s.length || s.charCodeAt(e) !== 39) return e;
  const a = s.charCodeAt(e + 1) | 0x20;
  if (a === 0x73 || a === 0x74 || a === 0x6d || a === 0x64) return e + 2; // s t m d
  if (e + 2 >= s.length) return e;
  const b = s.charCodeAt(e + 2) | 0x20;
  if ((a === 0x72 && b === 0x65) || (a === 0x76 && b === 0x65) || (a === 0x6c && b === 0x6c)) return e + 3; // re ve ll
  return e;
}

/** `[^\s\p{L}\p{N}]+[\r\n/]*` from j. */
function punctuationEnd(s: string, j: number): number {
  let k = runWithout(s, j, LETTER | NUMBER | SPACE);
  for (let c = s.charCodeAt(k); c === 13 || c === 10 || c === 47; c = s.charCodeAt(++k));
  return k;
}

/** End (exclusive, in UTF-16 units) of the piece that starts at i < s.length. */
export function o200kPieceEnd(s: string, i: number): number {
  const n = s.length;
  const cp = codePointAt(s, i);
  const w = cp > 0xffff ? 2 : 1;
  const f = classOf(cp);
  // Alternatives 1 and 2: a word, optionally after one char that is no letter, digit, CR or LF.
  const isPrefix = (f & (LETTER | NUMBER)) === 0 && cp !== 13 && cp !== 10;
  const isWordChar = (f & (UPPERISH | LOWERISH)) !== 0;
  let e = -1;
  if (isPrefix) e = lowerWordEnd(s, i + w);
  if (e < 0 && isWordChar) e = lowerWordEnd(s, i);
  if (e < 0 && isPrefix) e = upperWordEnd(s, i + w);
  if (e < 0 && isWordChar) e = upperWordEnd(s, i);
  if (e >= 0) return contractionEnd(s, e);
  // Alternative 3: up to three digits.
  if (f & NUMBER) {
    let p = i + w;
    for (let k = 1; k < 3 && p < n; k++) {
      const c = codePointAt(s, p);
      if ((classOf(c) & NUMBER) === 0) break;
      p += c > 0xffff ? 2 : 1;
    }
    return p;
  }
  // Alternative 4: punctuation and symbols, optionally after one space.
  if (cp === 32 && i + 1 < n && (classOf(codePointAt(s, i + 1)) & (LETTER | NUMBER | SPACE)) === 0) {
    return punctuationEnd(s, i + 1);
  }
  if ((f & (LETTER | NUMBER | SPACE)) === 0) return punctuationEnd(s, i);
  // Alternatives 5-7: whitespace (all of it is in the BMP).
  let k = i;
  let lastNewline = -1;
  while (k < n) {
    const c = s.charCodeAt(k);
    if ((classOf(c) & SPACE) === 0) break;
    if (c === 10 || c === 13) lastNewline = k;
    k++;
  }
  if (lastNewline >= 0) return lastNewline + 1; // \s*[\r\n]+
  if (k === n || k - i === 1) return k; // \s+ at the end, or a single space before a word
  return k - 1; // \s+(?!\S): leave the last space to the next piece
}

/** The pieces of text, for tests and tools; the encoder walks o200kPieceEnd itself. */
export function splitO200k(text: string): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < text.length; ) {
    const e = o200kPieceEnd(text, i);
    pieces.push(text.slice(i, e));
    i = e;
  }
  return pieces;
}
