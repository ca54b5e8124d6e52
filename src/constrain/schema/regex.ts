// Regular expressions (the ECMA-262 subset JSON Schema users write) -> DFAs over Unicode code
// points, for `pattern` and `format`. Code-point semantics (the `u` flag, as ajv and Python's `re`
// read patterns); surrogates are never in a language, because a JSON string that decodes to a lone
// surrogate is not valid Unicode text for most validators. What cannot be compiled exactly is
// refused through `fail` (the caller turns it into UnsupportedSchemaError): lookaround, word
// boundaries, backreferences, Unicode property escapes, inline flags.

/** Sorted, disjoint, inclusive code-point ranges: [lo0, hi0, lo1, hi1, …]. */
export type Ranges = number[];

export const UNIVERSE: Ranges = [0, 0xd7ff, 0xe000, 0x10ffff];
const DIGIT: Ranges = [0x30, 0x39];
const WORD: Ranges = [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a];
// ECMA-262 WhiteSpace and LineTerminator
const SPACE: Ranges = normalize([
  [9, 13], [0x20, 0x20], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a], [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff],
]);
const DOT: Ranges = complement([0x0a, 0x0a, 0x0d, 0x0d, 0x2028, 0x2029]);

export function normalize(pairs: [number, number][]): Ranges {
  const sorted = pairs.filter(([a, b]) => a <= b).sort((x, y) => x[0] - y[0]);
  const out: Ranges = [];
  for (const [a, b] of sorted) {
    const n = out.length;
    if (n && a <= out[n - 1]! + 1) out[n - 1] = Math.max(out[n - 1]!, b);
    else out.push(a, b);
  }
  return intersect(out, UNIVERSE);
}

function pairsOf(r: Ranges): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < r.length; i += 2) out.push([r[i]!, r[i + 1]!]);
  return out;
}

export function complement(r: Ranges): Ranges {
  const out: [number, number][] = [];
  let next = 0;
  for (let i = 0; i < r.length; i += 2) {
    out.push([next, r[i]! - 1]);
    next = r[i + 1]! + 1;
  }
  out.push([next, 0x10ffff]);
  return normalize(out);
}

export function intersect(a: Ranges, b: Ranges): Ranges {
  const out: Ranges = [];
  for (let i = 0, j = 0; i < a.length && j < b.length; ) {
    const lo = Math.max(a[i]!, b[j]!);
    const hi = Math.min(a[i + 1]!, b[j + 1]!);
    if (lo <= hi) out.push(lo, hi);
    if (a[i + 1]! < b[j + 1]!) i += 2;
    else j += 2;
  }
  return out;
}

type Rx = { t: 'set'; r: Ranges } | { t: 'cat'; xs: Rx[] } | { t: 'alt'; xs: Rx[] } | { t: 'rep'; x: Rx; min: number; max: number };

/** One top-level alternative with its anchors (JSON Schema patterns are unanchored). */
export interface Branch {
  rx: Rx;
  start: boolean;
  end: boolean;
}

const ch = (c: string) => c.codePointAt(0)!;
const isDigit = (c: number | undefined) => c !== undefined && c >= 0x30 && c <= 0x39;
const isHex = (c: number | undefined) => c !== undefined && /[0-9a-fA-F]/.test(String.fromCodePoint(c));

export function parseRegex(pattern: string, fail: (what: string) => never): Branch[] {
  const cps = [...pattern].map((c) => c.codePointAt(0)!);
  let i = 0;
  const peek = () => cps[i];
  const eat = (c: string) => (cps[i] === ch(c) ? (i++, true) : false);

  const hex = (n: number): number => {
    let v = 0;
    for (let k = 0; k < n; k++) {
      if (!isHex(cps[i])) fail('a malformed \\x or \\u escape');
      v = v * 16 + parseInt(String.fromCodePoint(cps[i++]!), 16);
    }
    return v;
  };

  /** After a backslash: a single code point, or a set for \d \w \s and their negations. */
  const escape = (inClass: boolean): number | Ranges => {
    const c = cps[i++];
    if (c === undefined) fail('a trailing backslash');
    const s = String.fromCodePoint(c);
    switch (s) {
      case 'd': return DIGIT;
      case 'D': return complement(DIGIT);
      case 'w': return WORD;
      case 'W': return complement(WORD);
      case 's': return SPACE;
      case 'S': return complement(SPACE);
      case 't': return 9;
      case 'n': return 10;
      case 'v': return 11;
      case 'f': return 12;
      case 'r': return 13;
      case '0':
        if (isDigit(peek())) fail('octal escapes');
        return 0;
      case 'c': {
        const x = peek();
        if (x === undefined || !/[A-Za-z]/.test(String.fromCodePoint(x))) fail('a malformed \\c escape');
        i++;
        return x % 32;
      }
      case 'x':
        return hex(2);
      case 'u': {
        if (eat('{')) {
          let v = 0;
          let n = 0;
          while (isHex(peek())) (v = v * 16 + parseInt(String.fromCodePoint(cps[i++]!), 16)), n++;
          if (!n || !eat('}') || v > 0x10ffff) fail('a malformed \\u{…} escape');
          return v;
        }
        const v = hex(4);
        // a surrogate pair written as two escapes is one code point
        if (v >= 0xd800 && v <= 0xdbff && cps[i] === 0x5c && cps[i + 1] === 0x75 && cps.slice(i + 2, i + 6).every(isHex)) {
          const save = i;
          i += 2;
          const lo = hex(4);
          if (lo >= 0xdc00 && lo <= 0xdfff) return 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
          i = save;
        }
        return v;
      }
      case 'b':
        if (inClass) return 8;
        return fail('word boundaries (\\b)');
      case 'B': return fail('word boundaries (\\B)');
      case 'k': return fail('backreferences (\\k)');
      case 'p':
      case 'P': return fail('Unicode property escapes (\\p, \\P)');
      default:
        if (isDigit(c)) return fail('backreferences (\\1…)');
        if (/[A-Za-z]/.test(s)) return fail(`the escape \\${s}`);
        return c; // escaped punctuation stands for itself
    }
  };

  const cls = (): Rx => {
    const negate = eat('^');
    const pairs: [number, number][] = [];
    const atom = (): number | Ranges => {
      const c = cps[i++];
      if (c === undefined) fail('an unterminated character class');
      return c === 0x5c ? escape(true) : c;
    };
    while (peek() !== 0x5d) {
      if (peek() === undefined) fail('an unterminated character class');
      const a = atom();
      if (peek() === 0x2d && cps[i + 1] !== 0x5d && cps[i + 1] !== undefined) {
        i++;
        const b = atom();
        if (typeof a !== 'number' || typeof b !== 'number') fail('a class escape as a range endpoint');
        if (a > b) fail('a character range out of order');
        pairs.push([a, b]);
      } else if (typeof a === 'number') pairs.push([a, a]);
      else pairs.push(...pairsOf(a));
    }
    i++; // ]
    const r = normalize(pairs);
    return { t: 'set', r: negate ? complement(r) : r };
  };

  const atom = (): Rx => {
    const c = cps[i]!;
    const s = String.fromCodePoint(c);
    i++;
    switch (s) {
      case '.': return { t: 'set', r: DOT };
      case '[': return cls();
      case '\\': {
        const e = escape(false);
        return { t: 'set', r: typeof e === 'number' ? normalize([[e, e]]) : e };
      }
      case '(': {
        if (eat('?')) {
          if (eat(':')) {
            // non-capturing
          } else if (peek() === ch('<') && cps[i + 1] !== ch('=') && cps[i + 1] !== ch('!')) {
            i++;
            while (peek() !== undefined && peek() !== ch('>')) i++;
            if (!eat('>')) fail('a malformed group name');
          } else if (peek() === ch('=') || peek() === ch('!') || peek() === ch('<')) fail('lookaround assertions');
          else fail('inline group modifiers (?…)');
        }
        const inner = alternation();
        if (!eat(')')) fail('an unbalanced parenthesis');
        return inner;
      }
      case ')': return fail('an unbalanced parenthesis');
      case '*':
      case '+':
      case '?': return fail('a quantifier with nothing to repeat');
      case '{': return fail("a '{' that is not a quantifier");
      case '^':
      case '$': return fail(`the anchor ${s} anywhere but at the start or end of the pattern`);
      default:
        return { t: 'set', r: normalize([[c, c]]) };
    }
  };

  const quantified = (): Rx => {
    const x = atom();
    let min = -1;
    let max = 0;
    if (eat('*')) (min = 0), (max = Infinity);
    else if (eat('+')) (min = 1), (max = Infinity);
    else if (eat('?')) (min = 0), (max = 1);
    else if (peek() === ch('{')) {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(String.fromCodePoint(...cps.slice(i, i + 24)));
      if (!m) fail("a '{' that is not a quantifier");
      i += m[0].length;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      if (max < min) fail('a {n,m} quantifier with m < n');
    }
    if (min < 0) return x;
    eat('?'); // lazy: the same language
    if (peek() === ch('*') || peek() === ch('+') || peek() === ch('?') || peek() === ch('{')) fail('a quantifier with nothing to repeat');
    return { t: 'rep', x, min, max };
  };

  const sequence = (top: boolean): { rx: Rx; end: boolean } => {
    const xs: Rx[] = [];
    let end = false;
    while (peek() !== undefined && peek() !== ch('|') && peek() !== ch(')')) {
      if (top && peek() === ch('$') && (cps[i + 1] === undefined || cps[i + 1] === ch('|'))) {
        i++;
        end = true;
        break;
      }
      xs.push(quantified());
    }
    return { rx: { t: 'cat', xs }, end };
  };

  function alternation(): Rx {
    const xs = [sequence(false).rx];
    while (eat('|')) xs.push(sequence(false).rx);
    return xs.length === 1 ? xs[0]! : { t: 'alt', xs };
  }

  const branches: Branch[] = [];
  for (;;) {
    const start = eat('^');
    const { rx, end } = sequence(true);
    branches.push({ rx, start, end });
    if (peek() === undefined) break;
    if (!eat('|')) fail('an unbalanced parenthesis');
  }
  return branches;
}

/** A DFA over code points: state 0 starts; every state can reach an accepting one. */
export interface Dfa {
  accept: Uint8Array;
  /** Per state: [lo, hi, target] triples, sorted and disjoint. */
  trans: Int32Array[];
}

const MAX_NFA = 60_000;
const MAX_DFA = 6_000;

/**
 * The DFA of the union of the branches. `exact`: the pattern's real (unanchored) language, for
 * proofs; otherwise only strings the anchored form matches in full (a subset). Repetition past
 * `maxChars` is cut there: no longer string is ever emitted or compared.
 */
export function regexDfa(branches: Branch[], maxChars: number, exact: boolean, fail: (what: string) => never): Dfa {
  const eps: number[][] = [];
  const edges: { r: Ranges; to: number }[][] = [];
  const state = () => {
    if (eps.length >= MAX_NFA) fail(`a pattern too large to compile (over ${MAX_NFA} states)`);
    eps.push([]);
    edges.push([]);
    return eps.length - 1;
  };
  const build = (x: Rx, s: number): number => {
    switch (x.t) {
      case 'set': {
        const e = state();
        if (x.r.length) edges[s]!.push({ r: x.r, to: e });
        return e;
      }
      case 'cat':
        for (const y of x.xs) s = build(y, s);
        return s;
      case 'alt': {
        const e = state();
        for (const y of x.xs) {
          const b = state();
          eps[s]!.push(b);
          eps[build(y, b)]!.push(e);
        }
        return e;
      }
      case 'rep': {
        for (let k = 0; k < x.min; k++) s = build(x.x, s);
        const e = state();
        eps[s]!.push(e);
        // Within maxChars characters, more than maxChars repetitions only add empty ones: a
        // star is the same language there, and far smaller than the copies.
        if (x.max >= maxChars) {
          const b = state();
          eps[s]!.push(b);
          const t = build(x.x, b);
          eps[t]!.push(b, e);
        } else {
          for (let k = x.min; k < x.max; k++) {
            const b = state();
            eps[s]!.push(b);
            s = build(x.x, b);
            eps[s]!.push(e);
          }
        }
        return e;
      }
    }
  };
  const start = state();
  const final = state();
  const anyStar = (s: number): number => build({ t: 'rep', x: { t: 'set', r: UNIVERSE }, min: 0, max: Infinity }, s);
  for (const b of branches) {
    let s = state();
    eps[start]!.push(s);
    if (exact && !b.start) s = anyStar(s);
    s = build(b.rx, s);
    if (exact && !b.end) s = anyStar(s);
    eps[s]!.push(final);
  }

  const closure = (set: number[]): number[] => {
    const seen = new Set(set);
    const stack = [...set];
    while (stack.length) for (const t of eps[stack.pop()!]!) if (!seen.has(t)) (seen.add(t), stack.push(t));
    return [...seen].sort((a, b) => a - b);
  };
  const ids = new Map<string, number>();
  const sets: number[][] = [];
  const intern = (set: number[]): number => {
    const key = set.join(',');
    let id = ids.get(key);
    if (id === undefined) {
      if (sets.length >= MAX_DFA) fail(`a pattern too complex to compile (over ${MAX_DFA} DFA states)`);
      id = sets.length;
      ids.set(key, id);
      sets.push(set);
    }
    return id;
  };
  intern(closure([start]));
  const accept: number[] = [];
  const trans: number[][] = [];
  for (let q = 0; q < sets.length; q++) {
    const set = sets[q]!;
    accept.push(set.includes(final) ? 1 : 0);
    const out: { lo: number; hi: number; to: number }[] = [];
    for (const n of set) for (const e of edges[n]!) for (let k = 0; k < e.r.length; k += 2) out.push({ lo: e.r[k]!, hi: e.r[k + 1]!, to: e.to });
    const cuts = [...new Set(out.flatMap((e) => [e.lo, e.hi + 1]))].sort((a, b) => a - b);
    const t: number[] = [];
    for (let k = 0; k + 1 < cuts.length; k++) {
      const lo = cuts[k]!;
      const hi = cuts[k + 1]! - 1;
      const targets = out.filter((e) => e.lo <= lo && e.hi >= hi).map((e) => e.to);
      if (!targets.length) continue;
      const to = intern(closure(targets));
      const n = t.length;
      if (n && t[n - 1] === to && t[n - 2] === lo - 1) t[n - 2] = hi;
      else t.push(lo, hi, to);
    }
    trans.push(t);
  }
  return prune(accept, trans);
}

/** Drops states that cannot reach acceptance (state 0 must survive: else the language is empty). */
export function prune(accept: number[], trans: number[][]): Dfa {
  const n = accept.length;
  const alive = new Uint8Array(n);
  for (let q = 0; q < n; q++) alive[q] = accept[q]!;
  for (let changed = true; changed; ) {
    changed = false;
    for (let q = 0; q < n; q++) {
      if (alive[q]) continue;
      const t = trans[q]!;
      for (let k = 2; k < t.length; k += 3) if (alive[t[k]!]) (alive[q] = 1), (changed = true);
    }
  }
  if (!alive[0]) return { accept: new Uint8Array(0), trans: [] };
  const map = new Int32Array(n).fill(-1);
  let m = 0;
  for (let q = 0; q < n; q++) if (alive[q]) map[q] = m++;
  const acc = new Uint8Array(m);
  const tr: Int32Array[] = [];
  for (let q = 0; q < n; q++) {
    if (!alive[q]) continue;
    acc[map[q]!] = accept[q]!;
    const t = trans[q]!;
    const o: number[] = [];
    for (let k = 0; k < t.length; k += 3) if (alive[t[k + 2]!]) o.push(t[k]!, t[k + 1]!, map[t[k + 2]!]!);
    tr.push(Int32Array.from(o));
  }
  return { accept: acc, trans: tr };
}

export const isEmpty = (d: Dfa) => d.accept.length === 0;

/** The DFA of `a` and `b` (both) or `a` minus `b`. */
export function product(a: Dfa, b: Dfa, minus: boolean, fail: (what: string) => never): Dfa {
  if (isEmpty(a)) return a;
  if (isEmpty(b)) return minus ? a : b;
  const ids = new Map<number, number>();
  const pairs: [number, number][] = [];
  // qb = -1: b is dead (only when subtracting)
  const intern = (qa: number, qb: number) => {
    const key = qa * (b.accept.length + 1) + qb + 1;
    let id = ids.get(key);
    if (id === undefined) {
      if (pairs.length >= MAX_DFA) fail(`constraints too complex to combine (over ${MAX_DFA} DFA states)`);
      id = pairs.length;
      ids.set(key, id);
      pairs.push([qa, qb]);
    }
    return id;
  };
  intern(0, 0);
  const accept: number[] = [];
  const trans: number[][] = [];
  for (let p = 0; p < pairs.length; p++) {
    const [qa, qb] = pairs[p]!;
    const bAcc = qb >= 0 && b.accept[qb] === 1;
    accept.push(a.accept[qa] && (minus ? !bAcc : bAcc) ? 1 : 0);
    const ta = a.trans[qa]!;
    const tb = qb >= 0 ? b.trans[qb]! : new Int32Array(0);
    const t: number[] = [];
    for (let i = 0; i < ta.length; i += 3) {
      let lo = ta[i]!;
      const hi = ta[i + 1]!;
      for (let j = 0; j < tb.length && lo <= hi; j += 3) {
        const blo = tb[j]!;
        const bhi = tb[j + 1]!;
        if (bhi < lo) continue;
        if (blo > hi) break;
        if (blo > lo && minus) t.push(lo, blo - 1, intern(ta[i + 2]!, -1));
        const l = Math.max(lo, blo);
        const h = Math.min(hi, bhi);
        t.push(l, h, intern(ta[i + 2]!, tb[j + 2]!));
        lo = h + 1;
      }
      if (lo <= hi && minus) t.push(lo, hi, intern(ta[i + 2]!, -1));
    }
    trans.push(t);
  }
  return prune(accept, trans);
}

/** Strings of `min` to `max` characters (max Infinity: no upper bound). */
export function lengthDfa(min: number, max: number): Dfa {
  const n = (max === Infinity ? min : max) + 1;
  const accept: number[] = [];
  const trans: number[][] = [];
  for (let q = 0; q < n; q++) {
    accept.push(q >= min ? 1 : 0);
    const to = q + 1 < n ? q + 1 : max === Infinity ? q : -1;
    trans.push(to < 0 ? [] : [0, 0xd7ff, to, 0xe000, 0x10ffff, to]);
  }
  return prune(accept, trans);
}

/** The one string `s`. */
export function literalDfa(s: string): Dfa {
  const cps = [...s].map((c) => c.codePointAt(0)!);
  if (cps.some((c) => c >= 0xd800 && c <= 0xdfff)) return { accept: new Uint8Array(0), trans: [] };
  return prune(
    cps.map(() => 0).concat(1),
    cps.map((c, k) => [c, c, k + 1]).concat([[]]),
  );
}
