// oneOf: exactly one branch must match. The automaton emits a union, so a value it emits must not
// match a second branch. Two tools, tried per pair of branches:
//  * proofs that no value matches both (different types, a discriminating required const/enum
//    property, disjoint numeric ranges, a required property the other branch forbids): those pairs
//    need nothing;
//  * for string branches, subtraction: each branch emits only its strings outside the other's
//    full language (a DFA difference). That needs the other's exact language, which a format (a
//    subset of the real grammar) does not have: then the branch emits nothing, so it still never
//    emits a value both match.
// Any other overlapping pair is refused: emitting it as anyOf could produce a value two branches
// accept, and we have no exact way to subtract objects, arrays or numbers.
import { isObj, UnsupportedSchemaError, type RxNode, type SNode } from './core.js';
import { literalDfa } from './regex.js';
import { plainRx, subtract, viable } from './strings.js';

/** What tells a oneOf branch apart: its types, required property values, ranges, closed keys. */
interface Discriminant {
  types: Set<string> | null;
  consts: Map<string, Set<string>>;
  /** numeric hull: lo/hi with exclusivity (null: unbounded) */
  range: { lo: number | null; loX: boolean; hi: number | null; hiX: boolean } | null;
  required: Set<string>;
  /** declared keys when additionalProperties is false */
  closed: Set<string> | null;
}

export function discriminant(branch: unknown, resolve: (v: unknown) => unknown, inferTypes: (s: Record<string, unknown>) => string[] | null): Discriminant {
  const s = resolve(branch);
  const out: Discriminant = { types: null, consts: new Map(), range: null, required: new Set(), closed: null };
  if (!isObj(s)) return out;
  const t = s.type ?? inferTypes(s);
  if (typeof t === 'string') out.types = new Set([t]);
  else if (Array.isArray(t)) out.types = new Set(t as string[]);
  const values = s.const !== undefined ? [s.const] : Array.isArray(s.enum) ? (s.enum as unknown[]) : null;
  if (values) {
    out.types = null;
    if (values.length && values.every((v) => typeof v === 'number')) {
      const ns = values as number[];
      out.range = { lo: Math.min(...ns), loX: false, hi: Math.max(...ns), hiX: false };
    }
  } else if (out.types && [...out.types].every((x) => x === 'integer' || x === 'number')) {
    const num = (k: string) => (typeof s[k] === 'number' ? (s[k] as number) : null);
    const [min, xmin, max, xmax] = [num('minimum'), num('exclusiveMinimum'), num('maximum'), num('exclusiveMaximum')];
    const lo = xmin !== null && (min === null || xmin >= min) ? { v: xmin, x: true } : { v: min, x: false };
    const hi = xmax !== null && (max === null || xmax <= max) ? { v: xmax, x: true } : { v: max, x: false };
    out.range = { lo: lo.v, loX: lo.x, hi: hi.v, hiX: hi.x };
  }
  const props = isObj(s.properties) ? s.properties : {};
  const required = Array.isArray(s.required) ? (s.required as unknown[]) : [];
  if (s.additionalProperties === false) out.closed = new Set(Object.keys(props));
  for (const name of required) {
    if (typeof name !== 'string') continue;
    out.required.add(name);
    const p = resolve(props[name]);
    if (!isObj(p)) continue;
    const vs = p.const !== undefined ? [p.const] : Array.isArray(p.enum) ? p.enum : null;
    if (vs) out.consts.set(name, new Set(vs.map((v) => JSON.stringify(v))));
  }
  return out;
}

/** Whether no value can match both branches (conservative: false when unsure). */
export function disjoint(a: Discriminant, b: Discriminant): boolean {
  if (a.types && b.types) {
    const numeric = (t: Set<string>) => t.has('number') || t.has('integer');
    const shared = [...a.types].some((t) => b.types!.has(t)) || (numeric(a.types) && numeric(b.types));
    if (!shared) return true;
  }
  if (a.types?.has('object') !== false && b.types?.has('object') !== false) {
    for (const [name, va] of a.consts) {
      const vb = b.consts.get(name);
      if (vb && ![...va].some((v) => vb.has(v))) return true;
    }
  }
  // Below, both must be only numbers (resp. only objects): a value of another type would satisfy
  // the range (resp. property) keywords vacuously.
  if (a.range && b.range) {
    const below = (x: Discriminant['range'] & object, y: Discriminant['range'] & object) =>
      x.hi !== null && y.lo !== null && (x.hi < y.lo || (x.hi === y.lo && (x.hiX || y.loX)));
    if (below(a.range, b.range) || below(b.range, a.range)) return true;
  }
  const onlyObjects = (d: Discriminant) => d.types?.size === 1 && d.types.has('object');
  if (onlyObjects(a) && onlyObjects(b)) {
    for (const k of a.required) if (b.closed && !b.closed.has(k)) return true;
    for (const k of b.required) if (a.closed && !a.closed.has(k)) return true;
  }
  return false;
}

/** The branch as strings (an RxNode) or string literals, or null when it is not only strings. */
function strings(node: SNode, maxChars: number, pending: (n: SNode) => boolean): { rx: RxNode } | { lits: string[] } | null {
  if (pending(node)) return null; // a $ref still compiling: its kind is not known yet
  if (node.k === 'rx') return { rx: node };
  if (node.k === 'str') {
    const max = node.max ?? maxChars;
    return { rx: plainRx(node.min ?? 0, max, max >= maxChars ? Infinity : max) };
  }
  if (node.k === 'lit') {
    const values = node.set.bytes.map((b) => JSON.parse(new TextDecoder().decode(b)) as unknown);
    if (values.every((v) => typeof v === 'string')) return { lits: values as string[] };
  }
  return null;
}

function matches(exact: NonNullable<RxNode['exact']>, s: string): boolean {
  const cps = [...s];
  if (cps.length < exact.min || cps.length > exact.max) return false;
  let q = 0;
  for (const c of cps) {
    const t = exact.dfa.trans[q]!;
    const cp = c.codePointAt(0)!;
    let next = -1;
    for (let k = 0; k < t.length; k += 3) if (cp >= t[k]! && cp <= t[k + 1]!) next = t[k + 2]!;
    if (next < 0) return false;
    q = next;
  }
  return exact.dfa.accept[q] === 1;
}

/**
 * The branch nodes to emit as a union, or an error naming the first pair we can neither prove
 * disjoint nor subtract.
 */
export function oneOfNodes(nodes: SNode[], tags: Discriminant[], path: string, maxChars: number, lits: (values: string[]) => SNode, pending: (n: SNode) => boolean): SNode[] {
  const out: (SNode | null)[] = nodes.slice();
  for (let i = 0; i < nodes.length; i++) {
    for (let j = 0; j < nodes.length; j++) {
      if (i === j || disjoint(tags[i]!, tags[j]!)) continue;
      const si = strings(nodes[i]!, maxChars, pending);
      const sj = strings(nodes[j]!, maxChars, pending);
      if (!si || !sj) {
        throw new UnsupportedSchemaError('oneOf', path, `branches ${Math.min(i, j)} and ${Math.max(i, j)} may both match; give them different types, a required const/enum property with different values, or disjoint ranges`);
      }
      const cur = out[i];
      if (!cur) continue;
      const exact = 'rx' in sj ? sj.rx.exact : null;
      const mine = strings(cur, maxChars, pending)!;
      if ('lits' in mine) {
        const keep = mine.lits.filter((v) => ('lits' in sj ? !sj.lits.includes(v) : exact !== null && !matches(exact, v)));
        out[i] = keep.length ? lits(keep) : null;
        continue;
      }
      let rx: RxNode = mine.rx;
      if ('lits' in sj) {
        for (const v of sj.lits) rx = subtract(rx, { dfa: literalDfa(v), min: 0, max: Infinity }, path);
      } else if (exact) rx = subtract(rx, exact, path);
      else rx = { ...rx, live: [] }; // nothing left to emit safely
      out[i] = viable(rx, 0, 0) ? { ...rx, exact: null } : null;
    }
  }
  const kept = out.filter((n): n is SNode => n !== null);
  if (!kept.length) throw new UnsupportedSchemaError('oneOf', path, 'no value within the bounds matches exactly one branch');
  return kept;
}
