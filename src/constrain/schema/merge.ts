// allOf of several schemas -> one equivalent schema, which the compiler then compiles as usual.
// What Zod's .and()/z.intersection and hand-written "base + extension" schemas send. Merging is
// exact for the keywords below (the merged schema accepts exactly what every member does), so
// the usual emitted-subset guarantees carry over; anything it cannot merge exactly is refused.
import { isObj, UnsupportedSchemaError } from './core.js';
import { EXTRA_PATTERNS } from './strings.js';

type Schema = Record<string | symbol, unknown>;

const ANNOTATION = new Set(['description', 'title', 'default', 'examples', '$comment', '$schema', '$id', 'deprecated', 'readOnly', 'writeOnly', '$defs', 'definitions']);
const VALUE_KEYWORDS = new Set(['minLength', 'maxLength', 'pattern', 'format', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'items', 'minItems', 'maxItems', 'properties', 'required', 'additionalProperties']);

/** Canonical JSON (sorted keys) so equal values compare equal. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObj(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

/**
 * The schema every member of `members` accepts. `resolve` follows $ref (and is given the path for
 * errors); the result may still hold $refs in subschemas that needed no merging.
 */
export function mergeAll(members: unknown[], path: string, resolve: (v: unknown, path: string) => unknown): Schema {
  const fail = (what: string): never => {
    throw new UnsupportedSchemaError('allOf', path, what);
  };
  // Flatten nested allOf and follow refs, so each member is a plain schema object.
  const flat: Schema[] = [];
  const add = (m: unknown, depth: number) => {
    if (depth > 32) fail('allOf/$ref nested too deeply');
    const r = resolve(m, path);
    if (r === true) return;
    if (r === false || !isObj(r)) fail('a member that is not a schema object');
    const { allOf, ...rest } = r as Schema;
    if (allOf !== undefined) {
      if (!Array.isArray(allOf)) fail('allOf must be an array');
      for (const x of allOf as unknown[]) add(x, depth + 1);
    }
    flat.push(rest);
  };
  for (const m of members) add(m, 0);
  // A → (B1 ∨ B2) is (A ∧ B1) ∨ (A ∧ B2); for oneOf the same holds since A is common to all.
  const withUnion = flat.filter((m) => m.anyOf !== undefined || m.oneOf !== undefined);
  if (withUnion.length > 1) fail('more than one member with anyOf/oneOf');
  if (withUnion.length === 1) {
    const u = withUnion[0]!;
    const kw = u.anyOf !== undefined ? 'anyOf' : 'oneOf';
    const { anyOf: _a, oneOf: _o, ...uRest } = u;
    const others = flat.filter((m) => m !== u).concat([uRest]);
    const branches = u[kw];
    if (!Array.isArray(branches)) fail(`${kw} must be an array`);
    return { [kw]: (branches as unknown[]).map((b) => mergeAll([...others, b], path, resolve)) };
  }
  return flat.reduce((a, b) => merge(a, b, path, resolve, 0), {} as Schema);
}

function merge(a: Schema, b: Schema, path: string, resolve: (v: unknown, path: string) => unknown, depth: number): Schema {
  const fail = (what: string): never => {
    throw new UnsupportedSchemaError('allOf', path, what);
  };
  if (depth > 32) fail('members nested too deeply to merge');
  const out: Schema = {};
  const keys = new Set([...Object.keys(a), ...Object.keys(b)].filter((k) => !ANNOTATION.has(k)));
  const both = (k: string) => a[k] !== undefined && b[k] !== undefined;
  const pick = (k: string) => (a[k] !== undefined ? a[k] : b[k]);
  const sub = (x: unknown, y: unknown, where: string): unknown => {
    if (x === undefined) return y;
    if (y === undefined) return x;
    if (isObj(x) && isObj(y) && typeof x.$ref === 'string' && x.$ref === y.$ref) return x;
    const rx = resolve(x, where);
    const ry = resolve(y, where);
    if (rx === true) return y;
    if (ry === true) return x;
    if (!isObj(rx) || !isObj(ry)) return fail(`cannot merge the subschemas at ${where}`);
    const flatX = rx.allOf !== undefined || rx.anyOf !== undefined || rx.oneOf !== undefined;
    const flatY = ry.allOf !== undefined || ry.anyOf !== undefined || ry.oneOf !== undefined;
    if (flatX || flatY) return mergeAll([rx, ry], where, resolve);
    return merge(rx, ry, where, resolve, depth + 1);
  };
  const typesOf = (s: Schema): string[] | null => (s.type === undefined ? null : Array.isArray(s.type) ? (s.type as string[]) : [s.type as string]);
  const ta = typesOf(a);
  const tb = typesOf(b);
  if (ta && tb) {
    const t = ta.flatMap((x) => (tb.includes(x) ? [x] : x === 'number' && tb.includes('integer') ? ['integer'] : x === 'integer' && tb.includes('number') ? [x] : []));
    const uniq = [...new Set(t)];
    if (!uniq.length) fail(`the types ${JSON.stringify(ta)} and ${JSON.stringify(tb)} do not intersect`);
    out.type = uniq.length === 1 ? uniq[0] : uniq;
  } else if (ta || tb) out.type = a.type ?? b.type;
  keys.delete('type');

  if (a.const !== undefined || b.const !== undefined || a.enum !== undefined || b.enum !== undefined) {
    const values = (s: Schema): unknown[] | null => (s.const !== undefined ? [s.const] : Array.isArray(s.enum) ? (s.enum as unknown[]) : null);
    const va = values(a);
    const vb = values(b);
    let vs = va ?? vb!;
    if (va && vb) vs = va.filter((v) => vb.some((w) => canonical(w) === canonical(v)));
    // The compiler emits enum values as they are, so they may not carry other constraints.
    if ([...keys].some((k) => VALUE_KEYWORDS.has(k))) fail('enum/const merged with other constraints');
    out.enum = vs;
    keys.delete('const');
    keys.delete('enum');
  }

  const maxOf = (k: string) => (both(k) ? Math.max(a[k] as number, b[k] as number) : pick(k));
  const minOf = (k: string) => (both(k) ? Math.min(a[k] as number, b[k] as number) : pick(k));
  for (const k of ['minLength', 'minItems', 'minimum', 'exclusiveMinimum']) if (keys.delete(k) && pick(k) !== undefined) out[k] = maxOf(k);
  for (const k of ['maxLength', 'maxItems', 'maximum', 'exclusiveMaximum']) if (keys.delete(k) && pick(k) !== undefined) out[k] = minOf(k);
  if (keys.delete('multipleOf')) {
    const x = a.multipleOf as number | undefined;
    const y = b.multipleOf as number | undefined;
    if (x !== undefined && y !== undefined && x !== y) {
      if (Number.isInteger(x / y)) out.multipleOf = x;
      else if (Number.isInteger(y / x)) out.multipleOf = y;
      else if (Number.isInteger(x) && Number.isInteger(y)) out.multipleOf = (x * y) / gcd(x, y);
      else fail(`multipleOf ${x} and ${y} together`);
    } else out.multipleOf = x ?? y;
  }
  if (keys.delete('pattern')) {
    const ps = [a.pattern, b.pattern, ...((a[EXTRA_PATTERNS] as string[]) ?? []), ...((b[EXTRA_PATTERNS] as string[]) ?? [])];
    const uniq = [...new Set(ps.filter((p) => p !== undefined))];
    out.pattern = uniq[0];
    if (uniq.length > 1) out[EXTRA_PATTERNS] = uniq.slice(1);
  }
  if (keys.delete('format')) {
    if (both('format') && a.format !== b.format) fail(`two formats (${String(a.format)}, ${String(b.format)})`);
    out.format = pick('format');
  }
  if (keys.delete('items') && pick('items') !== undefined) out.items = sub(a.items, b.items, `${path}/items`);

  const objectKeys = ['properties', 'required', 'additionalProperties'];
  if (objectKeys.some((k) => keys.has(k))) {
    for (const k of objectKeys) keys.delete(k);
    const pa = isObj(a.properties) ? a.properties : {};
    const pb = isObj(b.properties) ? b.properties : {};
    const required = [...new Set([...((a.required as string[]) ?? []), ...((b.required as string[]) ?? [])])];
    const apa = a.additionalProperties;
    const apb = b.additionalProperties;
    // What member s says about a property it does not declare: false (forbidden), a schema, or nothing.
    const extra = (ap: unknown) => (ap === false ? false : ap === undefined || ap === true ? undefined : ap);
    const props: Record<string, unknown> = {};
    for (const name of new Set([...Object.keys(pa), ...Object.keys(pb)])) {
      const sa = name in pa ? pa[name] : extra(apa);
      const sb = name in pb ? pb[name] : extra(apb);
      if (sa === false || sb === false) {
        if (required.includes(name)) fail(`property ${JSON.stringify(name)} is required by one member and forbidden by another`);
        continue; // no instance of both can have it
      }
      props[name] = sub(sa, sb, `${path}/properties/${name}`);
    }
    if (a.properties !== undefined || b.properties !== undefined) out.properties = props;
    if (required.length) out.required = required;
    const ea = extra(apa);
    const eb = extra(apb);
    if (ea === false || eb === false) out.additionalProperties = false;
    else if (ea !== undefined || eb !== undefined) out.additionalProperties = sub(ea, eb, `${path}/additionalProperties`);
  }
  // The rest (unknown keywords, $ref left by a member…) is copied when only one member has it, for
  // the compiler to accept or refuse; in both it would need a merge rule we do not have.
  for (const k of keys) {
    if (both(k) && canonical(a[k]) !== canonical(b[k])) fail(`"${k}" in two members`);
    out[k] = pick(k);
  }
  return out;
}

function gcd(x: number, y: number): number {
  return y ? gcd(y, x % y) : x;
}
