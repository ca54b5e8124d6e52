// Deterministic mixed-script text for tokenizer tests and benchmarks: English, CJK, Arabic,
// emoji, code, other scripts with combining marks, long whitespace and digit runs, and random code
// points from every plane. Same seed, same text.

import { rng } from '../helpers/random.js';

const ENGLISH = (
  'the of and to in is it that was for on are with as I his they be at one have this from or had by ' +
  "hot word but what some we can out other were all there when up use your how said an each she which " +
  "do their time if will way about many then them write would like so these her long make thing see him " +
  "two has look more day could go come did number sound no most people my over know water than call " +
  "don't we'll IT'S you're they've I'd she'll HELLO World OpenAI GPT-OSS naïve café résumé coöperate " +
  'Mr. Dr. e.g. i.e. U.S.A. McDonald iPhone JavaScript TypeScript WebGPU MoE MXFP4 tokenizer harmony'
).split(' ');

const CODE = [
  'function add(a, b) {\n  return a + b;\n}\n',
  'for (let i = 0; i < n; i++) {\n\tsum += x[i] * y[i];\n}\n',
  'const url = "https://example.com/api/v1/chat/completions?stream=true";\n',
  'if (x !== null && y >= 0x1f) { z = x << 3 | y; } // comment\r\n',
  'def main():\n    print(f"{name!r:>10}")\n    return [i ** 2 for i in range(10)]\n',
  '<div class="a"><span>&nbsp;&amp;</span></div>\n',
  'SELECT id, email FROM users WHERE id IN (1, 2, 3) ORDER BY id DESC;\n',
  '{"role": "user", "content": "<|start|>user<|message|>hi<|end|>"}\n',
  '#include <stdio.h>\nint main(void) { printf("%d\\n", 42); }\n',
  '    \t  // indented\n\n\n    ',
  'a/b/c//d///e \\path\\to\\file.txt\n/usr/local/bin/\n',
];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function int(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

function charsFrom(r: () => number, n: number, lo: number, hi: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCodePoint(int(r, lo, hi));
  return s;
}

function english(r: () => number): string {
  const words: string[] = [];
  const n = int(r, 4, 30);
  for (let i = 0; i < n; i++) words.push(pick(r, ENGLISH));
  return `${words.join(' ')}${pick(r, ['. ', '? ', '! ', ', ', ';\n', '\n\n', ' -- '])}`;
}

function cjk(r: () => number): string {
  const ranges: Array<[number, number]> = [
    [0x4e00, 0x9fff], // CJK ideographs
    [0x3041, 0x3096], // hiragana
    [0x30a1, 0x30fa], // katakana
    [0xac00, 0xd7a3], // hangul
  ];
  let s = '';
  const n = int(r, 1, 6);
  for (let i = 0; i < n; i++) {
    const [lo, hi] = pick(r, ranges);
    // Clauses of up to 16 characters, as in prose (punctuation ends a piece).
    s += charsFrom(r, int(r, 1, 16), lo, hi) + pick(r, ['，', '。', '、', '！', ' ', '「', '」']);
  }
  return s;
}

function arabic(r: () => number): string {
  const words: string[] = [];
  const n = int(r, 2, 15);
  for (let i = 0; i < n; i++) {
    let w = '';
    const len = int(r, 2, 8);
    for (let k = 0; k < len; k++) {
      w += String.fromCodePoint(int(r, 0x0621, 0x064a));
      if (r() < 0.3) w += String.fromCodePoint(int(r, 0x064b, 0x0652)); // harakat (marks)
    }
    words.push(w);
  }
  return `${words.join(' ')}${pick(r, ['، ', '. ', ' ٣٤٥ ', '؟\n'])}`;
}

function emoji(r: () => number): string {
  let s = '';
  const n = int(r, 1, 12);
  for (let i = 0; i < n; i++) {
    const kind = int(r, 0, 4);
    if (kind === 0) s += charsFrom(r, 1, 0x1f300, 0x1f64f);
    else if (kind === 1) s += charsFrom(r, 1, 0x1f466, 0x1f469) + charsFrom(r, 1, 0x1f3fb, 0x1f3ff); // skin tones
    else if (kind === 2) s += '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}'; // ZWJ family
    else if (kind === 3) s += charsFrom(r, 2, 0x1f1e6, 0x1f1ff); // flag letters
    else s += charsFrom(r, 1, 0x1f900, 0x1f9ff) + (r() < 0.5 ? ' ' : '');
  }
  return s;
}

function whitespaceRun(r: () => number): string {
  const unit = pick(r, [' ', '\t', '\n', '\r\n', '  \n', '\u00a0', '\u3000']);
  // Runs stay at a few hundred characters: js-tiktoken's merge loop is quadratic in a piece's length.
  return unit.repeat(int(r, 1, r() < 0.1 ? 150 : 40)) + pick(r, ['x', 'Word', '1', '!', '', ' y']);
}

function digitRun(r: () => number): string {
  let s = '';
  const n = int(r, 1, r() < 0.1 ? 2000 : 30);
  for (let i = 0; i < n; i++) s += String.fromCharCode(48 + int(r, 0, 9));
  return s + pick(r, [' ', '.', ',', '', 'px', '%']);
}

function otherScripts(r: () => number): string {
  const ranges: Array<[number, number]> = [
    [0x0410, 0x044f], // Cyrillic
    [0x0391, 0x03c9], // Greek
    [0x0905, 0x0939], // Devanagari letters
    [0x0e01, 0x0e30], // Thai
    [0x05d0, 0x05ea], // Hebrew
    [0x0300, 0x036f], // combining marks alone
    [0x2200, 0x22ff], // math operators
    [0x00c0, 0x024f], // Latin extended
  ];
  const [lo, hi] = pick(r, ranges);
  let s = '';
  const n = int(r, 1, 8);
  for (let i = 0; i < n; i++) s += `${charsFrom(r, int(r, 1, 10), lo, hi)}${r() < 0.3 ? '\u0301' : ''} `;
  return s;
}

/**
 * Random code points from all planes, unassigned ones included. Not surrogates, and not U+0085 or
 * U+FEFF: the JavaScript references split those unlike tiktoken (see o200k-split.ts).
 */
function anyCodePoints(r: () => number): string {
  let s = '';
  const n = int(r, 1, 20);
  for (let i = 0; i < n; i++) {
    let cp = r() < 0.7 ? int(r, 0, 0xffff) : int(r, 0x10000, 0x10ffff);
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp === 0x85 || cp === 0xfeff) cp = 0x20;
    s += String.fromCodePoint(cp);
  }
  return s;
}

const GENERATORS: Array<[number, (r: () => number) => string]> = [
  [30, english],
  [10, cjk],
  [8, arabic],
  [6, emoji],
  [12, (r) => pick(r, CODE)],
  [5, whitespaceRun],
  [5, digitRun],
  [6, otherScripts],
  [3, anyCodePoints],
];

/** At least minBytes of UTF-8 text, the same for the same seed. */
export function mixedText(minBytes: number, seed = 1): string {
  const r = rng(seed);
  const total = GENERATORS.reduce((s, [w]) => s + w, 0);
  const parts: string[] = [];
  let bytes = 0;
  while (bytes < minBytes) {
    let x = r() * total;
    let gen = GENERATORS[0]![1];
    for (const [w, g] of GENERATORS) {
      if ((x -= w) < 0) {
        gen = g;
        break;
      }
    }
    const part = gen(r);
    parts.push(part);
    bytes += Buffer.byteLength(part);
  }
  return parts.join('');
}
