// pattern, format, number bounds, multipleOf, overlapping oneOf and allOf merges. Every value the
// byte automaton emits on a random walk (uniform over the allowed bytes, ending at random where it
// may) must validate with independent checks: ajv for the JSON Schema keywords (its pattern is
// JavaScript's RegExp with the u flag, its numbers binary doubles), and format checks written here
// from the RFCs (ajv-formats is not a dependency). Then: what stays refused, and a few token-level
// walks over the real vocabulary.
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { Automaton } from '../../src/constrain/automaton.js';
import { createJsonValueConstraint, HARMONY_IDS } from '../../src/constrain/index.js';
import { compileSchema, DEFAULT_BOUNDS, UnsupportedSchemaError, validateSupportedSchema, type ConstraintBounds } from '../../src/constrain/schema.js';
import { rng } from '../helpers/random.js';
import { testTokenizer } from '../tokenizer/test-tokenizer.js';

const ajv = new Ajv({ strict: false, validateFormats: false });
// for patterns written for engines without the u flag (ajv's default refuses them)
const ajvNoU = new Ajv({ strict: false, validateFormats: false, unicodeRegExp: false });

/** Independent format checks: true = valid per the format's RFC. */
const FORMAT_CHECKS: Record<string, (s: string) => boolean> = {
  date: (s) => {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
    if (!m) return false;
    const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!));
    d.setUTCFullYear(+m[1]!);
    return d.getUTCFullYear() === +m[1]! && d.getUTCMonth() === +m[2]! - 1 && d.getUTCDate() === +m[3]!;
  },
  time: (s) => /^([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([zZ]|[+-]([01]\d|2[0-3]):[0-5]\d)$/.test(s),
  'date-time': (s) => {
    const [d, t, ...rest] = s.split(/[Tt]/);
    return !rest.length && t !== undefined && FORMAT_CHECKS.date!(d!) && FORMAT_CHECKS.time!(t) && !Number.isNaN(Date.parse(s));
  },
  email: (s) => {
    const at = s.lastIndexOf('@');
    const local = s.slice(0, at);
    return at > 0 && local.length <= 64 && /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/.test(local) && FORMAT_CHECKS.hostname!(s.slice(at + 1));
  },
  uuid: (s) => /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(s),
  ipv4: (s) => {
    const parts = s.split('.');
    return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && +p <= 255);
  },
  ipv6: (s) => {
    const parts = s.split(':');
    return parts.length === 8 && parts.every((p) => /^[0-9a-fA-F]{1,4}$/.test(p));
  },
  hostname: (s) => {
    const labels = s.split('.');
    return s.length <= 253 && labels.every((l) => l.length >= 1 && l.length <= 63 && /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$/.test(l)) && /[A-Za-z]/.test(labels.at(-1)![0]!);
  },
  uri: (s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'http:' || u.protocol === 'https:') && s.startsWith(`${u.protocol}//`) && FORMAT_CHECKS.hostname!(u.hostname);
    } catch {
      return false;
    }
  },
};

/** Every `format` in the value (walking the schema alongside) passes its independent check. */
function formatsHold(schema: unknown, value: unknown): boolean {
  if (typeof schema !== 'object' || schema === null) return true;
  const s = schema as Record<string, unknown>;
  if (typeof s.format === 'string' && typeof value === 'string' && FORMAT_CHECKS[s.format] && !FORMAT_CHECKS[s.format]!(value)) return false;
  if (s.properties && typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) if (!formatsHold((s.properties as Record<string, unknown>)[k], v)) return false;
  }
  return true;
}

/** A random walk over the automaton's bytes; returns the text once it chose to end. */
function walk(schema: unknown, r: () => number, bounds: Partial<ConstraintBounds> = {}): string {
  const b = { ...DEFAULT_BOUNDS, maxWhitespace: 1, ...bounds };
  const aut = new Automaton(b);
  let st = aut.start(compileSchema(schema, b));
  const out: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    const canEnd = aut.finish(st) !== null;
    const next: number[] = [];
    for (let x = 0; x < 256; x++) if (aut.step(st, x).length) next.push(x);
    if (!canEnd) expect(next.length, `dead end after ${Buffer.from(out).toString()}`).toBeGreaterThan(0);
    if (canEnd && (!next.length || r() < 0.1)) return Buffer.from(out).toString('utf8');
    const x = next[Math.floor(r() * next.length)]!;
    out.push(x);
    st = aut.step(st, x);
  }
  throw new Error('the walk did not end');
}

function accepts(schema: unknown, text: string): boolean {
  const aut = new Automaton(DEFAULT_BOUNDS);
  let st = aut.start(compileSchema(schema));
  for (const x of new TextEncoder().encode(text)) {
    st = aut.step(st, x);
    if (!st.length) return false;
  }
  return aut.finish(st) !== null;
}

/** n walks; each output must parse, validate with ajv, and pass the format checks. */
function walksValidate(schema: Record<string, unknown>, n: number, seed: number, bounds: Partial<ConstraintBounds> = {}): unknown[] {
  let validate: ReturnType<typeof ajv.compile>;
  try {
    validate = ajv.compile(schema);
  } catch {
    validate = ajvNoU.compile(schema);
  }
  const r = rng(seed);
  const values: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const text = walk(schema, r, bounds);
    const value = JSON.parse(text) as unknown;
    expect(validate(value), `${JSON.stringify(schema)}\n${text}\n${ajv.errorsText(validate.errors)}`).toBe(true);
    expect(formatsHold(schema, value), `${JSON.stringify(schema)}\n${text}`).toBe(true);
    values.push(value);
  }
  return values;
}

describe('pattern', () => {
  const patterns = [
    '^[a-z]{2,5}$', '^\\d{3}-\\d{4}$', 'ab|cd', '^(?:foo|bar)+baz?$', '^[^a-z]*$', '^.{0,6}$', '^\\w+@\\w+\\.com$', '^[A-Z][a-z]*( [A-Z][a-z]*)*$',
    '^\\s\\S\\W\\D$', '^(a|b)*c{2}(d?e){1,3}$', '^[\\u00e9\\u4e00-\\u4e05🎉]+$', '^x\\u{1F600}y$', '^["\\\\/]{1,4}$', '^[\\x00-\\x1f]{2}$',
    '^\\d{3}\\-[\\w\\-]{2}$', '^(?<year>\\d{4})-(?<mm>0[1-9]|1[0-2])$', '^[-+]?\\d+(\\.\\d+)?$', '^\\$\\^\\.\\*\\(\\)\\[\\]$', '^[\\]a-]{3}$', '^[^]{2}$', '^a{2,}?$',
  ];
  it.each(patterns)('%s: random walks match the RegExp (u flag), escaped JSON', (pattern) => {
    const values = walksValidate({ type: 'string', pattern }, 25, pattern.length * 7919, { maxStringChars: 40 });
    let re: RegExp;
    try {
      re = new RegExp(pattern, 'u');
    } catch {
      re = new RegExp(pattern); // written for engines without the u flag
    }
    for (const v of values) expect(re.test(v as string)).toBe(true);
  });

  it('accepts and rejects by hand, escapes included', () => {
    const p = { type: 'string', pattern: '^a"\\\\b\\n$' };
    expect(accepts(p, '"a\\"\\\\b\\n"')).toBe(true);
    expect(accepts(p, '"\\u0061\\u0022\\u005cb\\u000a"')).toBe(true);
    expect(accepts(p, '"a\\"\\\\b\n"')).toBe(false); // a raw control character is not JSON
    expect(accepts({ type: 'string', pattern: '^[a-c]+$' }, '"abd"')).toBe(false);
    expect(accepts({ type: 'string', pattern: '^é$' }, '"é"')).toBe(true);
    expect(accepts({ type: 'string', pattern: '^é$' }, '"\\u00e9"')).toBe(true);
    expect(accepts({ type: 'string', pattern: '^.$' }, '"\\ud83d\\ude00"')).toBe(false); // surrogate escapes are never emitted
    expect(accepts({ type: 'string', pattern: '^.$' }, '"😀"')).toBe(true);
    // unanchored: only what the anchored form matches in full is emitted (a subset)
    expect(accepts({ type: 'string', pattern: 'abc' }, '"abc"')).toBe(true);
    expect(accepts({ type: 'string', pattern: 'abc' }, '"xabc"')).toBe(false);
    // enum values beside a pattern or number bounds: only those that pass
    expect(accepts({ type: 'string', enum: ['ab', 'xy'], pattern: '^a' }, '"ab"')).toBe(true);
    expect(accepts({ type: 'string', enum: ['ab', 'xy'], pattern: '^a' }, '"xy"')).toBe(false);
    expect(accepts({ type: 'number', enum: [0.5, 3, 9], exclusiveMinimum: 0.5, multipleOf: 3 }, '0.5')).toBe(false);
    expect(accepts({ type: 'number', enum: [0.5, 3, 9], exclusiveMinimum: 0.5, multipleOf: 3 }, '9')).toBe(true);
    // unless that leaves nothing in the bounds: then the real (unanchored) language
    expect(accepts({ type: 'string', pattern: 'abc', minLength: 5 }, '"xabcy"')).toBe(true);
    expect(accepts({ type: 'string', pattern: 'abc', minLength: 5 }, '"xabdy"')).toBe(false);
  });

  it('with minLength/maxLength: the lengths hold, unbounded repetition stops at maxStringChars', () => {
    const values = walksValidate({ type: 'string', pattern: '^(ab)+$', minLength: 6, maxLength: 10 }, 20, 5);
    for (const v of values) expect([6, 8, 10]).toContain((v as string).length);
    for (const v of walksValidate({ type: 'string', pattern: '^a*$' }, 10, 6, { maxStringChars: 12 })) expect((v as string).length).toBeLessThanOrEqual(12);
    expect(accepts({ type: 'string', pattern: '^a*$' }, `"${'a'.repeat(257)}"`)).toBe(false);
  });
});

describe('format', () => {
  it.each(['date', 'time', 'date-time', 'email', 'uuid', 'ipv4', 'ipv6', 'hostname', 'uri'])('%s: every walk passes the independent check', (format) => {
    walksValidate({ type: 'object', properties: { v: { type: 'string', format } }, required: ['v'], additionalProperties: false }, 30, format.length * 31);
  });

  it('the checks themselves tell valid from invalid', () => {
    expect(FORMAT_CHECKS.date!('2024-02-29')).toBe(true);
    expect(FORMAT_CHECKS.date!('2023-02-29')).toBe(false);
    expect(FORMAT_CHECKS.ipv4!('01.2.3.4')).toBe(false);
    expect(FORMAT_CHECKS.hostname!('a-.com')).toBe(false);
    expect(accepts({ type: 'string', format: 'date' }, '"2023-04-31"')).toBe(false);
    expect(accepts({ type: 'string', format: 'uuid' }, '"123e4567-e89b-12d3-a456-426614174000"')).toBe(true);
  });

  it('with a pattern: both hold; unknown formats and formats on other types are annotations', () => {
    const values = walksValidate({ type: 'string', format: 'date', pattern: '^20' }, 10, 8);
    for (const v of values) expect((v as string).startsWith('20')).toBe(true);
    expect(() => validateSupportedSchema({ type: 'string', format: 'duration' })).not.toThrow();
    expect(() => validateSupportedSchema({ type: 'integer', format: 'int32' })).not.toThrow();
    expect(accepts({ type: 'string', format: 'made-up' }, '"anything"')).toBe(true);
  });
});

describe('number bounds and multipleOf', () => {
  const schemas: Record<string, unknown>[] = [
    { type: 'number', minimum: 0.5, exclusiveMaximum: 2 },
    { type: 'number', exclusiveMinimum: -1e-3, maximum: 0 },
    { type: 'number', minimum: 0 },
    { type: 'number', exclusiveMaximum: -7.25 },
    { type: 'number', exclusiveMinimum: 0.1, exclusiveMaximum: 0.2 },
    { type: 'number', minimum: 1e6, maximum: 1000000.5 },
    { type: 'number', multipleOf: 0.25, minimum: -3, maximum: 3 },
    { type: 'number', multipleOf: 2.5 },
    { type: 'number', multipleOf: 4, exclusiveMinimum: 10 },
    { type: 'integer', multipleOf: 7, exclusiveMinimum: -30, maximum: 30 },
    { type: 'integer', multipleOf: 1000, minimum: 123 },
    { type: 'integer', multipleOf: 0.5, minimum: -5, maximum: 5 },
    { type: ['number', 'null'], minimum: 3, maximum: 3 },
  ];
  it.each(schemas)('%j: every walk validates (doubles, as ajv checks)', (schema) => {
    walksValidate(schema, 30, JSON.stringify(schema).length);
  });

  it('exclusive bounds hold after reading as doubles; values stay in plain notation', () => {
    const s = { type: 'number', exclusiveMinimum: 0.1, exclusiveMaximum: 0.1000001 };
    expect(accepts(s, '0.1')).toBe(false);
    expect(accepts(s, '0.10000005')).toBe(true);
    expect(accepts(s, '1.00000005e-1')).toBe(false);
    expect(accepts({ type: 'number', minimum: 0 }, '-0.0001')).toBe(false);
    expect(accepts({ type: 'integer', multipleOf: 3 }, '-12')).toBe(true);
    expect(accepts({ type: 'integer', multipleOf: 3 }, '13')).toBe(false);
    expect(accepts({ type: 'number', multipleOf: 0.25 }, '1.75')).toBe(true);
    expect(accepts({ type: 'number', multipleOf: 0.25 }, '1.7')).toBe(false);
  });
});

describe('allOf merges', () => {
  const base = { type: 'object', properties: { id: { type: 'integer', minimum: 1 }, name: { type: 'string', maxLength: 8 } }, required: ['id'] };
  const schemas: Record<string, unknown>[] = [
    { allOf: [base, { properties: { name: { type: 'string', minLength: 2, pattern: '^[a-z]+$' }, tag: { enum: ['x', 'y'] } }, required: ['name', 'tag'] }] },
    { allOf: [base, { properties: { id: {}, name: {} }, additionalProperties: false }] },
    { $defs: { Base: base }, allOf: [{ $ref: '#/$defs/Base' }, { type: 'object', properties: { extra: { type: 'number', maximum: 0 } } }], description: 'Zod .and()' },
    { type: 'object', allOf: [{ properties: { a: { type: 'string', pattern: '^a' } }, required: ['a'] }, { properties: { a: { type: 'string', pattern: 'z$' } } }] },
    { allOf: [{ type: ['integer', 'string'] }, { type: ['number', 'null'], maximum: 4, minimum: -4 }] },
    { allOf: [{ type: 'string', minLength: 2 }, { maxLength: 9 }, { format: 'ipv4' }] },
    { allOf: [{ type: 'object', properties: { k: { type: 'string' } }, required: ['k'] }, { anyOf: [{ properties: { k: { const: 'a' } } }, { properties: { n: { type: 'integer' } }, required: ['n'] }] }] },
  ];
  it.each(schemas)('%j: every walk validates with ajv (which checks allOf itself)', (schema) => {
    walksValidate(schema, 25, JSON.stringify(schema).length);
  });
});

describe('oneOf with overlapping branches', () => {
  const schemas: Record<string, unknown>[] = [
    { oneOf: [{ type: 'string' }, { type: 'string', maxLength: 3 }] },
    { oneOf: [{ type: 'string', pattern: '^a' }, { type: 'string', pattern: 'b$' }, { enum: ['ab', 'c'] }] },
    { oneOf: [{ type: 'string', format: 'email' }, { type: 'string', pattern: '^[a-z]+$' }] },
    { oneOf: [{ type: 'integer', maximum: 0 }, { type: 'number', exclusiveMinimum: 0 }] },
    { oneOf: [{ type: 'integer', minimum: 0, maximum: 9 }, { type: 'integer', minimum: 10 }, { type: 'string' }] },
    {
      oneOf: [
        { type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false },
        { type: 'object', properties: { b: { type: 'integer' } }, required: ['b'], additionalProperties: false },
      ],
    },
  ];
  it.each(schemas)('%j: every walk matches exactly one branch (ajv)', (schema) => {
    walksValidate(schema, 25, JSON.stringify(schema).length, { maxStringChars: 16 });
  });
});

describe('refused, naming the keyword', () => {
  const refused: Array<[unknown, string, RegExp?]> = [
    [{ type: 'string', pattern: '^(?=a)a$' }, 'pattern', /lookaround/],
    [{ type: 'string', pattern: '(?<!x)y' }, 'pattern', /lookaround/],
    [{ type: 'string', pattern: '^(a)\\1$' }, 'pattern', /backreference/],
    [{ type: 'string', pattern: '\\bword\\b' }, 'pattern', /word boundar/],
    [{ type: 'string', pattern: '^\\p{L}+$' }, 'pattern', /property/],
    [{ type: 'string', pattern: '(?i)abc' }, 'pattern'],
    [{ type: 'string', pattern: 'a(b' }, 'pattern', /invalid/],
    [{ type: 'string', pattern: 'a^b' }, 'pattern', /anchor/],
    [{ type: 'string', pattern: '^a{300}$' }, 'pattern', /no string/],
    [{ type: 'string', pattern: '^[a-z]{5}$', maxLength: 3 }, 'pattern', /no string/],
    [{ type: 'string', pattern: 7 }, 'pattern'],
    [{ type: 'number', minimum: 2, maximum: 1 }, 'minimum'],
    [{ type: 'number', minimum: 1e30 }, 'minimum'],
    [{ type: 'number', multipleOf: 0.1 }, 'multipleOf', /binary floating point/],
    [{ type: 'integer', multipleOf: 0 }, 'multipleOf'],
    [{ type: 'integer', multipleOf: 5, minimum: 1, maximum: 4 }, 'multipleOf'],
    [{ oneOf: [{ type: 'integer' }, { type: 'number' }] }, 'oneOf'],
    [{ oneOf: [{ type: 'object' }, { type: 'object', properties: { a: { type: 'string' } } }] }, 'oneOf'],
    [{ oneOf: [{ type: 'string', format: 'email' }, { type: 'string', format: 'hostname' }] }, 'oneOf', /no value/],
    [{ allOf: [{ type: 'string' }, { type: 'integer' }] }, 'allOf', /do not intersect/],
    [{ allOf: [{ enum: ['a', 'bb'] }, { type: 'string', minLength: 2 }] }, 'allOf', /enum/],
    [{ allOf: [{ type: 'object', properties: { a: {} }, additionalProperties: false }, { type: 'object', properties: { b: {} }, required: ['b'] }] }, 'allOf', /forbidden/],
    [{ allOf: [{ type: 'string', format: 'date' }, { format: 'email' }] }, 'allOf', /two formats/],
    [{ allOf: [{ anyOf: [{ type: 'string' }] }, { oneOf: [{ type: 'string' }] }] }, 'allOf'],
  ];
  it.each(refused)('%j -> %s', (schema, keyword, detail) => {
    let err: unknown;
    try {
      validateSupportedSchema(schema);
    } catch (e) {
      err = e;
    }
    expect(err, JSON.stringify(schema)).toBeInstanceOf(UnsupportedSchemaError);
    expect((err as UnsupportedSchemaError).keyword).toBe(keyword);
    if (detail) expect((err as Error).message).toMatch(detail);
  });
});

describe('through the real vocabulary', () => {
  it('a Pydantic-style model with pattern, formats, float bounds, multipleOf, allOf and oneOf: random token walks validate', async () => {
    const tok = await testTokenizer();
    const schema = {
      allOf: [
        { type: 'object', properties: { id: { type: 'string', format: 'uuid' }, when: { type: 'string', format: 'date-time' } }, required: ['id', 'when'] },
        {
          properties: {
            code: { type: 'string', pattern: '^[A-Z]{3}-\\d{2,4}$' },
            score: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
            qty: { type: 'integer', multipleOf: 5, minimum: 5, maximum: 100 },
            contact: { oneOf: [{ type: 'string', format: 'email' }, { type: 'string', maxLength: 6 }] },
          },
          required: ['code', 'score', 'qty', 'contact'],
        },
      ],
    };
    const validate = ajv.compile(schema);
    const r = rng(99);
    for (let n = 0; n < 3; n++) {
      const c = createJsonValueConstraint(schema, tok, { vocabSize: 201088, maxWhitespace: 1, maxStringChars: 48 });
      const ids: number[] = [];
      for (let i = 0; i < 2000; i++) {
        const m = c.next();
        if (!m) break;
        const allowed: number[] = [];
        for (let w = 0; w < m.length; w++) for (let x = m[w]!; x; x &= x - 1) allowed.push(w * 32 + 31 - Math.clz32(x & -x));
        expect(allowed.length).toBeGreaterThan(0);
        const id = allowed[Math.floor(r() * allowed.length)]!;
        c.accept(id);
        ids.push(id);
      }
      expect(ids.at(-1)).toBe(HARMONY_IDS.return);
      const text = new TextDecoder().decode(tok.decodeBytes(ids.slice(0, -1)));
      const value = JSON.parse(text) as Record<string, unknown>;
      expect(validate(value), `${text}\n${ajv.errorsText(validate.errors)}`).toBe(true);
      expect(FORMAT_CHECKS.uuid!(value.id as string) && FORMAT_CHECKS['date-time']!(value.when as string), text).toBe(true);
    }
  }, 300_000);
});
