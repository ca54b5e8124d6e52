// JSON Schema -> the node graph the byte automaton walks. Supports the subset OpenAI's strict
// structured outputs use, and what Pydantic and Zod add to it: type (object, array, string, number,
// integer, boolean, null, or a list of them), properties, required, additionalProperties (false;
// or a schema when there are no properties: a map), items, minItems/maxItems, minLength/maxLength,
// pattern (schema/regex.ts: ECMA-262 with the u flag, no lookaround/backreferences/\b/\p),
// format (schema/strings.ts: date-time, date, time, email, uuid, ipv4, ipv6, hostname, uri and
// their idn-/iri forms as safe subsets; other formats are annotations), minimum/maximum/
// exclusiveMinimum/exclusiveMaximum on integers and numbers, multipleOf (integers, dyadic
// fractions: schema/numbers.ts), enum, const, anyOf, oneOf (schema/oneof.ts: branches proven
// disjoint, or strings subtracted from each other), allOf (schema/merge.ts: merged into one
// schema), $ref to #, #/$defs/… and #/definitions/…, nesting and recursion. Annotations
// (description, title, default, examples, …) are ignored. Every other keyword throws
// UnsupportedSchemaError naming it.
//
// What the automaton emits is a subset of what the schema accepts, bounded so that any token
// sequence it allows terminates (see ConstraintBounds): object properties in schema order, each at
// most once, and only declared ones (additionalProperties true/absent still allows extra keys in
// the schema, we just never emit them); compact enum/const values (JSON.stringify form); bounded
// strings, numbers, arrays, whitespace and nesting; unanchored patterns as full matches where
// that leaves a string; bounded numbers in plain decimal notation of at most 15 digits.

export { DEFAULT_BOUNDS, litSet, UnsupportedSchemaError, type ConstraintBounds, type DecNode, type LitSet, type ObjProp, type RxNode, type SNode } from './schema/core.js';
import { DEFAULT_BOUNDS, isObj, litSet, UnsupportedSchemaError, type ConstraintBounds, type LitSet, type SNode } from './schema/core.js';
import { compileDecimal } from './schema/numbers.js';
import { mergeAll } from './schema/merge.js';
import { discriminant, oneOfNodes } from './schema/oneof.js';
import { compileRx, EXTRA_PATTERNS } from './schema/strings.js';

const utf8 = new TextEncoder();

const ANNOTATIONS = new Set([
  'description',
  'title',
  'default',
  'examples',
  '$comment',
  '$schema',
  '$id',
  'deprecated',
  'readOnly',
  'writeOnly',
]);
const TYPES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']);
const ALLOWED: Record<string, Set<string>> = {
  common: new Set(['type', 'enum', 'const', 'anyOf', 'oneOf', 'allOf', '$ref', '$defs', 'definitions']),
  string: new Set(['minLength', 'maxLength', 'pattern', 'format']),
  object: new Set(['properties', 'required', 'additionalProperties']),
  array: new Set(['items', 'minItems', 'maxItems']),
  numeric: new Set(['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf']),
};

/** Throws UnsupportedSchemaError (with the keyword) unless the whole schema is in the subset. */
export function validateSupportedSchema(schema: unknown, bounds: Partial<ConstraintBounds> = {}): void {
  compileSchema(schema, bounds);
}

/** Compiles a schema to the automaton's node graph (cycles for recursive $ref). */
export function compileSchema(schema: unknown, boundsIn: Partial<ConstraintBounds> = {}): SNode {
  const bounds = { ...DEFAULT_BOUNDS, ...boundsIn };
  const byRef = new Map<string, SNode>();
  const pending = new Map<string, { placeholder: SNode; resolved: boolean }>();
  let anyNode: SNode | null = null;

  const any = (): SNode => {
    if (anyNode) return anyNode;
    const n: SNode = { k: 'any', alts: [] };
    anyNode = n;
    const obj: SNode = { k: 'obj', props: [], extra: n, keySets: [] };
    const arr: SNode = { k: 'arr', items: n, min: 0, max: bounds.maxItems };
    n.alts.push(obj, arr, { k: 'str' }, { k: 'num', integer: false }, literals([true, false, null]));
    return n;
  };

  const resolvePointer = (ref: string, path: string): unknown => {
    if (ref === '#') return schema;
    const m = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref);
    if (!m) throw new UnsupportedSchemaError('$ref', path, `only "#", "#/$defs/…" and "#/definitions/…" refs are supported (got ${JSON.stringify(ref)})`);
    const defs = isObj(schema) ? schema[m[1]!] : undefined;
    const name = m[2]!.replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isObj(defs) || !(name in defs)) throw new UnsupportedSchemaError('$ref', path, `${ref} does not resolve`);
    return defs[name];
  };

  /** A schema with its $ref chain followed (for the oneOf check). */
  const resolve = (v: unknown): unknown => {
    for (let hops = 0; isObj(v) && typeof v.$ref === 'string' && hops < 32; hops++) v = resolvePointer(v.$ref, '');
    return v;
  };

  const compileRef = (ref: string, path: string): SNode => {
    const done = byRef.get(ref);
    if (done) return done;
    const p = pending.get(ref);
    if (p) return p.placeholder;
    // A placeholder object whose fields are filled in once the target compiles (recursion).
    const placeholder = { k: 'str' } as SNode;
    pending.set(ref, { placeholder, resolved: false });
    const target = compile(resolvePointer(ref, path), ref.slice(1));
    Object.assign(placeholder, target);
    // Drop the other kind's fields a placeholder may have had; shapes are plain objects.
    byRef.set(ref, placeholder);
    pending.delete(ref);
    return placeholder;
  };

  const literals = (values: unknown[], path = ''): SNode => {
    if (!values.length) throw new UnsupportedSchemaError('enum', path, 'an empty enum matches nothing');
    return { k: 'lit', set: litSet(values.map((v, i) => ({ bytes: utf8.encode(JSON.stringify(v)), info: i }))) };
  };

  const compile = (s: unknown, path: string): SNode => {
    if (s === true) return any();
    if (!isObj(s)) throw new UnsupportedSchemaError('schema', path, 'a schema must be an object or true');
    const type = s.type;
    const types: string[] | null = type === undefined ? null : Array.isArray(type) ? (type as string[]) : [type as string];
    if (types) {
      if (!types.length || types.some((t) => typeof t !== 'string' || !TYPES.has(t))) {
        throw new UnsupportedSchemaError('type', path, `unknown type ${JSON.stringify(type)}`);
      }
    }
    for (const key of Object.keys(s)) {
      if (ANNOTATIONS.has(key) || ALLOWED.common!.has(key)) continue;
      // An annotation on other types (int32, float…), and unknown formats are ignored on strings.
      if (key === 'format') continue;
      if (ALLOWED.object!.has(key) && (!types || types.includes('object'))) continue;
      if (ALLOWED.array!.has(key) && (!types || types.includes('array'))) continue;
      if (ALLOWED.string!.has(key) && (!types || types.includes('string'))) continue;
      if (ALLOWED.numeric!.has(key) && types && types.some((t) => t === 'integer' || t === 'number')) continue;
      throw new UnsupportedSchemaError(key, path);
    }
    if (s.$defs !== undefined && !isObj(s.$defs)) throw new UnsupportedSchemaError('$defs', path);
    if (s.definitions !== undefined && !isObj(s.definitions)) throw new UnsupportedSchemaError('definitions', path);
    // Check every definition, used or not, so a bad one is reported up front.
    for (const defsKey of ['$defs', 'definitions'] as const) {
      const defs = s[defsKey];
      if (isObj(defs) && path === '') for (const name of Object.keys(defs)) compileRef(`#/${defsKey}/${name}`, `/${defsKey}/${name}`);
    }
    const extraKeys = Object.keys(s).filter((k) => !ANNOTATIONS.has(k) && k !== '$defs' && k !== 'definitions');
    if (s.$ref !== undefined) {
      if (typeof s.$ref !== 'string') throw new UnsupportedSchemaError('$ref', path);
      const others = extraKeys.filter((k) => k !== '$ref');
      if (others.length) throw new UnsupportedSchemaError(others[0]!, path, 'keywords next to $ref are not supported');
      return compileRef(s.$ref, path);
    }
    if (s.const !== undefined || s.enum !== undefined) {
      let values: unknown[];
      if (s.const !== undefined) {
        if (s.enum !== undefined) throw new UnsupportedSchemaError('enum', path, 'enum together with const');
        values = [s.const];
      } else {
        if (!Array.isArray(s.enum)) throw new UnsupportedSchemaError('enum', path, 'enum must be an array');
        values = s.enum;
      }
      if (types) values = values.filter((v) => types.some((t) => matchesType(v, t)));
      values = values.filter((v) => passesNewKeywords(s, v));
      if (s.anyOf !== undefined) throw new UnsupportedSchemaError('anyOf', path, 'anyOf together with enum/const');
      return literals(values, path);
    }
    if (s.allOf !== undefined) {
      if (!Array.isArray(s.allOf) || !s.allOf.length) throw new UnsupportedSchemaError('allOf', path, 'allOf must be a non-empty array');
      // One member and nothing beside it (Pydantic's $ref with a description): compiled as is,
      // so a $ref keeps sharing its node.
      if (s.allOf.length === 1 && extraKeys.length === 1) return compile(s.allOf[0], `${path}/allOf/0`);
      const { allOf, $defs: _d, definitions: _e, ...rest } = s;
      return compile(mergeAll([rest, ...(allOf as unknown[])], path, (v) => resolve(v)), path);
    }
    if (s.oneOf !== undefined) {
      if (!Array.isArray(s.oneOf) || !s.oneOf.length) throw new UnsupportedSchemaError('oneOf', path, 'oneOf must be a non-empty array');
      if (types || s.anyOf !== undefined) throw new UnsupportedSchemaError('oneOf', path, 'oneOf together with type or anyOf');
      // Exactly one branch must match: see schema/oneof.ts for how overlapping branches are handled.
      const tags = s.oneOf.map((b) => discriminant(b, resolve, inferTypes));
      const nodes = s.oneOf.map((a, i) => compile(a, `${path}/oneOf/${i}`));
      const isPending = (n: SNode) => [...pending.values()].some((p) => p.placeholder === n);
      return { k: 'any', alts: oneOfNodes(nodes, tags, path, bounds.maxStringChars, (vs) => literals(vs, path), isPending) };
    }
    if (s.anyOf !== undefined) {
      if (!Array.isArray(s.anyOf) || !s.anyOf.length) throw new UnsupportedSchemaError('anyOf', path, 'anyOf must be a non-empty array');
      if (types) throw new UnsupportedSchemaError('type', path, 'type together with anyOf');
      return { k: 'any', alts: s.anyOf.map((a, i) => compile(a, `${path}/anyOf/${i}`)) };
    }
    const kinds = types ?? inferTypes(s);
    if (!kinds) return any();
    const alts = kinds.map((t) => compileType(s, t, path));
    return alts.length === 1 ? alts[0]! : { k: 'any', alts };
  };

  const compileType = (s: Record<string, unknown>, t: string, path: string): SNode => {
    switch (t) {
      case 'string': {
        const len = (key: string): number | undefined => {
          const v = s[key];
          if (v === undefined) return undefined;
          if (!Number.isInteger(v) || (v as number) < 0) throw new UnsupportedSchemaError(key, path, 'must be a non-negative integer');
          return v as number;
        };
        const min = len('minLength');
        const max = len('maxLength');
        if (min !== undefined && min > bounds.maxStringChars) throw new UnsupportedSchemaError('minLength', path, `over the bound of ${bounds.maxStringChars} characters`);
        if (min !== undefined && max !== undefined && min > max) throw new UnsupportedSchemaError('maxLength', path, 'below minLength');
        const rx = compileRx(s, path, bounds, min, max);
        if (rx) return rx;
        if (min === undefined && max === undefined) return { k: 'str' };
        return { k: 'str', ...(min !== undefined ? { min } : {}), max: Math.min(max ?? bounds.maxStringChars, bounds.maxStringChars) };
      }
      case 'number':
        return compileDecimal(s, false, path, bounds) ?? { k: 'num', integer: false };
      case 'integer': {
        const dec = compileDecimal(s, true, path, bounds);
        if (dec) return dec;
        const num = (key: string): number | undefined => {
          const v = s[key];
          if (v === undefined) return undefined;
          if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > Number.MAX_SAFE_INTEGER) throw new UnsupportedSchemaError(key, path);
          return v;
        };
        const bounds2 = [num('minimum'), num('exclusiveMinimum'), num('maximum'), num('exclusiveMaximum')];
        if (bounds2.every((b) => b === undefined)) return { k: 'num', integer: true };
        let lo = -Number.MAX_SAFE_INTEGER;
        let hi = Number.MAX_SAFE_INTEGER;
        if (bounds2[0] !== undefined) lo = Math.max(lo, Math.ceil(bounds2[0]));
        if (bounds2[1] !== undefined) lo = Math.max(lo, Math.floor(bounds2[1]) + 1);
        if (bounds2[2] !== undefined) hi = Math.min(hi, Math.floor(bounds2[2]));
        if (bounds2[3] !== undefined) hi = Math.min(hi, Math.ceil(bounds2[3]) - 1);
        if (lo > hi) throw new UnsupportedSchemaError('minimum', path, 'the integer range is empty');
        return { k: 'num', integer: true, lo, hi };
      }
      case 'boolean':
        return literals([true, false]);
      case 'null':
        return literals([null]);
      case 'array': {
        const min = s.minItems ?? 0;
        const max = s.maxItems ?? bounds.maxItems;
        if (!Number.isInteger(min) || (min as number) < 0) throw new UnsupportedSchemaError('minItems', path);
        if (!Number.isInteger(max) || (max as number) < (min as number)) throw new UnsupportedSchemaError('maxItems', path);
        if ((min as number) > bounds.maxItems) throw new UnsupportedSchemaError('minItems', path, `over the bound of ${bounds.maxItems} items`);
        const items = s.items === undefined ? any() : compile(s.items, `${path}/items`);
        return { k: 'arr', items, min: min as number, max: Math.min(max as number, bounds.maxItems) };
      }
      default: {
        const props = s.properties ?? {};
        if (!isObj(props)) throw new UnsupportedSchemaError('properties', path);
        const required = s.required ?? [];
        if (!Array.isArray(required) || required.some((r) => typeof r !== 'string' || !(r in props))) {
          throw new UnsupportedSchemaError('required', path, 'required names must be declared in properties');
        }
        const ap = s.additionalProperties;
        let extra: SNode | null = null;
        const names = Object.keys(props);
        if (ap !== undefined && ap !== false && ap !== true) {
          if (names.length) throw new UnsupportedSchemaError('additionalProperties', path, 'a schema next to properties is not supported');
          extra = compile(ap, `${path}/additionalProperties`);
        } else if ((ap === undefined || ap === true) && !names.length && s.properties === undefined) {
          extra = any(); // {"type":"object"}: a free-form object
        }
        const node: SNode = {
          k: 'obj',
          props: names.map((key) => ({ key, node: compile(props[key], `${path}/properties/${key}`), required: required.includes(key) })),
          extra,
          keySets: [],
        };
        return node;
      }
    }
  };

  const root = compile(schema, '');
  computeMinDepth(root);
  if (!Number.isFinite(minDepth(root))) throw new UnsupportedSchemaError('$ref', '', 'the recursion has no finite instance');
  if (minDepth(root) > bounds.maxDepth) throw new UnsupportedSchemaError('maxDepth', '', `the schema needs more than ${bounds.maxDepth} nested levels`);
  return root;
}

const MIN_DEPTH = new WeakMap<SNode, number>();

/** Fewest nested objects/arrays any instance of `node` needs (Infinity: none is finite). */
export function minDepth(node: SNode): number {
  return MIN_DEPTH.get(node) ?? Infinity;
}

function computeMinDepth(root: SNode): void {
  const nodes: SNode[] = [];
  const seen = new Set<SNode>();
  const visit = (n: SNode) => {
    if (seen.has(n)) return;
    seen.add(n);
    nodes.push(n);
    if (n.k === 'obj') {
      for (const p of n.props) visit(p.node);
      if (n.extra) visit(n.extra);
    } else if (n.k === 'arr') visit(n.items);
    else if (n.k === 'any') n.alts.forEach(visit);
  };
  visit(root);
  for (let changed = true; changed; ) {
    changed = false;
    for (const n of nodes) {
      let d: number;
      if (n.k === 'obj') d = 1 + Math.max(0, ...n.props.filter((p) => p.required).map((p) => minDepth(p.node)));
      else if (n.k === 'arr') d = n.min > 0 ? 1 + minDepth(n.items) : 1;
      else if (n.k === 'any') d = Math.min(...n.alts.map(minDepth));
      else d = 0;
      if (d < minDepth(n)) {
        MIN_DEPTH.set(n, d);
        changed = true;
      }
    }
  }
}

function inferTypes(s: Record<string | symbol, unknown>): string[] | null {
  if (s.properties !== undefined || s.required !== undefined || s.additionalProperties !== undefined) return ['object'];
  if (s.items !== undefined || s.minItems !== undefined || s.maxItems !== undefined) return ['array'];
  // Other types pass pattern and format unchecked; emitting only strings is a subset.
  if (s.pattern !== undefined || s.format !== undefined || s[EXTRA_PATTERNS] !== undefined) return ['string'];
  return null;
}

/**
 * Whether an enum/const value passes pattern, number bounds and multipleOf beside it (values are
 * emitted as they are, so those that fail are left out; checked as validators do, in doubles).
 */
function passesNewKeywords(s: Record<string, unknown>, v: unknown): boolean {
  if (typeof v === 'string' && typeof s.pattern === 'string') {
    try {
      if (!new RegExp(s.pattern, 'u').test(v)) return false;
    } catch {
      throw new UnsupportedSchemaError('pattern', '', 'an invalid regular expression');
    }
  }
  if (typeof v !== 'number') return true;
  const n = (k: string) => (typeof s[k] === 'number' ? (s[k] as number) : undefined);
  const [min, xmin, max, xmax, mult] = [n('minimum'), n('exclusiveMinimum'), n('maximum'), n('exclusiveMaximum'), n('multipleOf')];
  if ((min !== undefined && v < min) || (xmin !== undefined && v <= xmin) || (max !== undefined && v > max) || (xmax !== undefined && v >= xmax)) return false;
  return mult === undefined || Number.isInteger(v / mult);
}

function matchesType(v: unknown, t: string): boolean {
  switch (t) {
    case 'null':
      return v === null;
    case 'boolean':
      return typeof v === 'boolean';
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return Number.isInteger(v);
    case 'number':
      return typeof v === 'number';
    case 'array':
      return Array.isArray(v);
    default:
      return isObj(v);
  }
}

/**
 * The key candidates after property i: props[i..j] where j is the first required one, leaving out
 * optional properties whose values need more than `room` nested levels.
 */
export function keySet(node: Extract<SNode, { k: 'obj' }>, i: number, room: number): LitSet | null {
  const slot = i * 64 + Math.min(room, 63);
  if (slot in node.keySets) return node.keySets[slot]!;
  const entries: { bytes: Uint8Array; info: number }[] = [];
  for (let j = i; j < node.props.length; j++) {
    const p = node.props[j]!;
    if (p.required || minDepth(p.node) <= room) entries.push({ bytes: utf8.encode(JSON.stringify(p.key)), info: j });
    if (p.required) break;
  }
  const set = entries.length ? litSet(entries) : null;
  node.keySets[slot] = set;
  return set;
}

/** Whether the object may close after emitting props before index i. */
export function canClose(node: Extract<SNode, { k: 'obj' }>, i: number): boolean {
  for (let j = i; j < node.props.length; j++) if (node.props[j]!.required) return false;
  return true;
}
