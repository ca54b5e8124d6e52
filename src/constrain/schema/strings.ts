// pattern and format: a string schema with either becomes an RxNode, a DFA over code points with
// length bounds. The automaton walks the JSON string byte by byte (raw UTF-8 or escapes) and only
// takes a character if some accepting state stays reachable within the length bounds, so every
// emitted string is in the language and no walk dead-ends.
import { UnsupportedSchemaError, type ConstraintBounds, type RxNode } from './core.js';
import { isEmpty, lengthDfa, parseRegex, product, regexDfa, UNIVERSE, type Dfa } from './regex.js';

// DNS labels: the form every hostname validator accepts (letters, digits, inner hyphens, at most
// 63 characters); the last label starts with a letter, since some validators refuse numeric TLDs.
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const TOP = '[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
// At most three labels: 3 * 64 - 1 characters stays under the 253 a hostname may have.
const HOST = `(?:${LABEL}\\.){0,2}${TOP}`;
const DATE = '\\d{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)';
const TIME = '(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,6})?(?:Z|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)';
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const HEX = '[0-9a-f]';
const PATH = '(?:/[A-Za-z0-9._~-]*)*(?:\\?[A-Za-z0-9._~=&-]*)?';

/**
 * Each format as the (anchored) regex of a subset every common validator accepts: dates with the
 * days every year has (no 29 February), times with seconds 00-59 (no leap second) and an explicit
 * offset (RFC 3339 full-time), dot-atom emails over an ASCII hostname, lowercase UUIDs, dotted-quad
 * IPv4 without leading zeros, IPv6 in its full eight-group form, http(s) URIs without userinfo or
 * percent escapes. An "idn-" or "iri" format accepts at least what its ASCII form does.
 */
export const FORMATS: Record<string, string> = {
  date: `^${DATE}$`,
  time: `^${TIME}$`,
  'date-time': `^${DATE}T${TIME}$`,
  email: `^[A-Za-z0-9_+-]{1,32}(?:\\.[A-Za-z0-9_+-]{1,31})?@${HOST}$`,
  uuid: `^${HEX}{8}-${HEX}{4}-${HEX}{4}-${HEX}{4}-${HEX}{12}$`,
  ipv4: `^${OCTET}(?:\\.${OCTET}){3}$`,
  ipv6: `^${HEX}{1,4}(?::${HEX}{1,4}){7}$`,
  hostname: `^${HOST}$`,
  uri: `^https?://${HOST}(?::[1-9]\\d{0,3})?${PATH}$`,
};
FORMATS['idn-email'] = FORMATS.email!;
FORMATS['idn-hostname'] = FORMATS.hostname!;
FORMATS.iri = FORMATS['uri-reference'] = FORMATS['iri-reference'] = FORMATS.uri!;

/** Extra anchored regexes a string must match (allOf merges put several patterns here). */
export const EXTRA_PATTERNS = Symbol('patterns');

const dfaCache = new Map<string, Dfa>();

function patternDfa(source: string, keyword: string, path: string, maxChars: number, exact: boolean): Dfa {
  const key = `${exact ? 1 : 0}${maxChars}:${source}`;
  const hit = dfaCache.get(key);
  if (hit) return hit;
  const fail = (what: string): never => {
    throw new UnsupportedSchemaError(keyword, path, `${JSON.stringify(source)}: ${what} not supported`);
  };
  try {
    new RegExp(source, 'u');
  } catch {
    // Patterns written for engines without the u flag (\- or \_ outside a class) are common;
    // the parser reads an escaped non-letter as itself, which is what those engines do.
    try {
      new RegExp(source);
    } catch {
      fail('an invalid regular expression (ECMA-262) is');
    }
  }
  const dfa = regexDfa(parseRegex(source, fail), maxChars, exact, fail);
  if (dfaCache.size > 256) dfaCache.clear();
  dfaCache.set(key, dfa);
  return dfa;
}

/** The string node for minLength/maxLength/pattern/format, or null when only lengths apply. */
export function compileRx(s: Record<string | symbol, unknown>, path: string, bounds: ConstraintBounds, min: number | undefined, maxIn: number | undefined): RxNode | null {
  const extra = (s[EXTRA_PATTERNS] as string[] | undefined) ?? [];
  const format = typeof s.format === 'string' && s.format in FORMATS ? s.format : null;
  if (s.format !== undefined && typeof s.format !== 'string') throw new UnsupportedSchemaError('format', path, 'must be a string');
  if (s.pattern !== undefined && typeof s.pattern !== 'string') throw new UnsupportedSchemaError('pattern', path, 'must be a string');
  if (s.pattern === undefined && !format && !extra.length) return null;
  const maxChars = Math.min(maxIn ?? bounds.maxStringChars, bounds.maxStringChars);
  const fail = (keyword: string) => (what: string): never => {
    throw new UnsupportedSchemaError(keyword, path, what);
  };
  const patterns = [...(typeof s.pattern === 'string' ? [s.pattern] : []), ...extra];
  const all = (exact: boolean): Dfa => {
    let d = format ? patternDfa(FORMATS[format]!, 'format', path, maxChars, false) : lengthDfa(0, Infinity);
    for (const p of patterns) d = product(d, patternDfa(p, 'pattern', path, maxChars, exact), false, fail('pattern'));
    return d;
  };
  // Unanchored patterns are emitted as full matches (nothing around them), which can leave no
  // string in the bounds ("^a" and "z$", a date and "^20", "abc" with minLength 5): then the
  // patterns' real languages are emitted.
  const exact = format || !patterns.length ? null : { dfa: all(true), min: min ?? 0, max: maxIn ?? Infinity };
  let node = rxNode(all(false), min ?? 0, maxChars, exact);
  if (!viable(node, 0, 0) && patterns.length) node = rxNode(all(true), min ?? 0, maxChars, exact);
  if (!viable(node, 0, 0)) {
    const kw = s.pattern !== undefined ? 'pattern' : extra.length ? 'allOf' : 'format';
    throw new UnsupportedSchemaError(kw, path, `no string of ${min ?? 0} to ${maxChars} characters matches`);
  }
  return node;
}

export function rxNode(dfa: Dfa, min: number, max: number, exact: RxNode['exact']): RxNode {
  const n = dfa.accept.length;
  const words = (max >> 5) + 1;
  const live = Array.from({ length: n }, () => new Uint32Array(words));
  for (let q = 0; q < n; q++) if (dfa.accept[q]) live[q]![0] = 1;
  for (let L = 1; L <= max; L++) {
    const w = (L - 1) >> 5;
    const bit = 1 << ((L - 1) & 31);
    for (let q = 0; q < n; q++) {
      const t = dfa.trans[q]!;
      for (let k = 2; k < t.length; k += 3) {
        if (live[t[k]!]![w]! & bit) {
          live[q]![L >> 5]! |= 1 << (L & 31);
          break;
        }
      }
    }
  }
  return { k: 'rx', dfa, min, max, live, exact };
}

/** A node for any string of min..max characters, as an RxNode (for oneOf subtraction). */
export function plainRx(min: number, max: number, schemaMax: number): RxNode {
  const dfa = lengthDfa(0, Infinity);
  return rxNode(dfa, min, max, { dfa, min, max: schemaMax });
}

/** Whether, in state q after `count` characters, some accepted string is still reachable. */
export function viable(node: RxNode, q: number, count: number): boolean {
  if (q < 0 || q >= node.live.length) return false;
  let lo = Math.max(0, node.min - count);
  const hi = node.max - count;
  const bits = node.live[q]!;
  while (lo <= hi) {
    const w = lo >> 5;
    const end = Math.min(hi, (w << 5) | 31);
    const span = end - lo + 1;
    const mask = (span === 32 ? 0xffffffff : ((1 << span) - 1) << (lo & 31)) >>> 0;
    if ((bits[w]! & mask) >>> 0) return true;
    lo = end + 1;
  }
  return false;
}

/** The state after code point cp from q, or -1. */
export function nextState(dfa: Dfa, q: number, cp: number): number {
  const t = dfa.trans[q]!;
  let lo = 0;
  let hi = t.length / 3 - 1;
  while (lo <= hi) {
    const m = (lo + hi) >> 1;
    if (cp < t[m * 3]!) hi = m - 1;
    else if (cp > t[m * 3 + 1]!) lo = m + 1;
    else return t[m * 3 + 2]!;
  }
  return -1;
}

/** Whether some code point in [lo, hi] leads from q to a viable state. */
export function someViable(node: RxNode, q: number, count: number, lo: number, hi: number): boolean {
  const t = node.dfa.trans[q]!;
  for (let k = 0; k < t.length; k += 3) {
    if (t[k + 1]! < lo) continue;
    if (t[k]! > hi) break;
    if (viable(node, t[k + 2]!, count + 1)) return true;
  }
  return false;
}

/** `node`'s strings minus the schema language `exact` (bounded like node). */
export function subtract(node: RxNode, other: NonNullable<RxNode['exact']>, path: string): RxNode {
  const fail = (what: string): never => {
    throw new UnsupportedSchemaError('oneOf', path, what);
  };
  let d = other.dfa;
  if (other.min > 0 || other.max < node.max) d = product(d, lengthDfa(other.min, other.max >= node.max ? Infinity : other.max), false, fail);
  const dfa = product(node.dfa, d, true, fail);
  const out = rxNode(dfa, node.min, node.max, null);
  return isEmpty(dfa) ? { ...out, dfa: { accept: new Uint8Array(0), trans: [] } } : out;
}

export { UNIVERSE };
