// The byte automaton against hand-written JSON texts: what a schema's constrained output may and may
// not be, the bounds, and the keywords we refuse.
import { describe, expect, it } from 'vitest';
import { Automaton } from '../../src/constrain/automaton.js';
import { compileSchema, DEFAULT_BOUNDS, UnsupportedSchemaError, validateSupportedSchema, type ConstraintBounds } from '../../src/constrain/schema.js';

function accepts(schema: unknown, text: string, bounds: Partial<ConstraintBounds> = {}): boolean {
  const b = { ...DEFAULT_BOUNDS, ...bounds };
  const aut = new Automaton(b);
  let st = aut.start(compileSchema(schema, b));
  for (const x of new TextEncoder().encode(text)) {
    st = aut.step(st, x);
    if (!st.length) return false;
  }
  return aut.finish(st) !== null;
}

const person = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    age: { type: 'integer' },
    email: { type: ['string', 'null'] },
    tags: { type: 'array', items: { type: 'string', enum: ['a', 'b', 'ab'] }, maxItems: 2 },
  },
  required: ['name', 'age'],
  additionalProperties: false,
};

describe('automaton', () => {
  it('accepts objects in property order with optional members left out', () => {
    expect(accepts(person, '{"name":"Ann","age":31}')).toBe(true);
    expect(accepts(person, '{ "name" : "Ann" , "age" : -0 , "tags" : [ "ab" , "a" ] }')).toBe(true);
    expect(accepts(person, '{"name":"\\u00e9\\n\\"x\\"","age":7,"email":null}')).toBe(true);
    expect(accepts(person, '{"name":"Zoë 東京 🎉","age":1,"email":"x@y"}')).toBe(true);
  });

  it('rejects what the schema or the bounds forbid', () => {
    expect(accepts(person, '{"name":"Ann"}')).toBe(false); // missing required
    expect(accepts(person, '{"age":1,"name":"Ann"}')).toBe(false); // out of schema order
    expect(accepts(person, '{"name":"Ann","age":1.5}')).toBe(false); // not an integer
    expect(accepts(person, '{"name":"Ann","age":01}')).toBe(false); // leading zero
    expect(accepts(person, '{"name":"Ann","age":1,"x":1}')).toBe(false); // undeclared key
    expect(accepts(person, '{"name":"Ann","age":1,"tags":["c"]}')).toBe(false); // not in enum
    expect(accepts(person, '{"name":"Ann","age":1,"tags":["a","b","a"]}')).toBe(false); // maxItems
    expect(accepts(person, '{"name":"A\nB","age":1}')).toBe(false); // raw control character
    expect(accepts(person, '{"name":"\\x","age":1}')).toBe(false); // bad escape
    expect(accepts(person, '{"name":"Ann","age":1,}')).toBe(false); // trailing comma
    expect(accepts(person, '{"name":"Ann","age":1} ')).toBe(false); // trailing whitespace
    expect(accepts({ type: 'string' }, '"abcd"', { maxStringChars: 3 })).toBe(false);
    expect(accepts({ type: 'string' }, '"abc"', { maxStringChars: 3 })).toBe(true);
    expect(accepts({ type: 'string' }, '"é東🎉"', { maxStringChars: 3 })).toBe(true);
    expect(accepts({ type: 'number' }, '1'.repeat(33))).toBe(false);
    expect(accepts({ type: 'number' }, '1'.repeat(32))).toBe(true);
    expect(accepts({ type: 'array', items: { type: 'null' } }, '[' + ' '.repeat(9) + ']')).toBe(false);
    expect(accepts({ type: 'array', items: { type: 'null' } }, '[' + ' '.repeat(8) + ']')).toBe(true);
  });

  it('rejects invalid UTF-8 inside strings', () => {
    const aut = new Automaton(DEFAULT_BOUNDS);
    const run = (bytes: number[]) => {
      let st = aut.start(compileSchema({ type: 'string' }));
      for (const x of bytes) st = aut.step(st, x);
      return aut.finish(st) !== null;
    };
    expect(run([0x22, 0xc3, 0xa9, 0x22])).toBe(true);
    expect(run([0x22, 0xc3, 0x22])).toBe(false); // truncated
    expect(run([0x22, 0xc0, 0x80, 0x22])).toBe(false); // overlong
    expect(run([0x22, 0xed, 0xa0, 0x80, 0x22])).toBe(false); // surrogate
    expect(run([0x22, 0xf4, 0x90, 0x80, 0x80, 0x22])).toBe(false); // above U+10FFFF
  });

  it('numbers, literals, anyOf, const and numbers ending at the value end', () => {
    expect(accepts({ type: 'number' }, '-12.5e+3')).toBe(true);
    expect(accepts({ type: 'number' }, '1.')).toBe(false);
    expect(accepts({ type: 'number' }, '.5')).toBe(false);
    expect(accepts({ type: 'integer' }, '1e3')).toBe(false);
    expect(accepts({ enum: [1, 12, 'x', null, { a: [1] }] }, '12')).toBe(true);
    expect(accepts({ enum: [1, 12, 'x', null, { a: [1] }] }, '1')).toBe(true);
    expect(accepts({ enum: [1, 12, 'x', null, { a: [1] }] }, '{"a":[1]}')).toBe(true);
    expect(accepts({ enum: [1, 12, 'x', null] }, '2')).toBe(false);
    expect(accepts({ const: 'hi' }, '"hi"')).toBe(true);
    expect(accepts({ const: 'hi' }, '"ho"')).toBe(false);
    const u = { anyOf: [{ type: 'object', properties: { a: { type: 'number' } }, required: ['a'], additionalProperties: false }, { type: 'object', properties: { b: { type: 'boolean' } }, required: ['b'], additionalProperties: false }, { type: 'array', items: { type: 'integer' } }] };
    expect(accepts(u, '{"a":1}')).toBe(true);
    expect(accepts(u, '{"b":false}')).toBe(true);
    expect(accepts(u, '[1,2,3]')).toBe(true);
    expect(accepts(u, '{"a":true}')).toBe(false);
    expect(accepts({ type: 'array', items: { type: 'number' } }, '[1,2.5,-3]')).toBe(true);
  });

  it('integer ranges are exact', () => {
    const r = { type: 'integer', minimum: 1, maximum: 10000 };
    for (const [t, ok] of [['1', true], ['10000', true], ['0', false], ['10001', false], ['-1', false], ['9999', true], ['01', false], ['100000', false]] as const) {
      expect(accepts(r, t), t).toBe(ok);
    }
    const neg = { type: 'integer', exclusiveMinimum: -20, exclusiveMaximum: -3 };
    for (const [t, ok] of [['-19', true], ['-4', true], ['-3', false], ['-20', false], ['5', false], ['-0', false], ['-1', false]] as const) {
      expect(accepts(neg, t), t).toBe(ok);
    }
    expect(accepts({ type: 'integer', minimum: 0, maximum: 0 }, '0')).toBe(true);
    expect(accepts({ type: 'integer', minimum: 0, maximum: 0 }, '-0')).toBe(false);
  });

  it('follows $defs and recursive $refs within the depth bound', () => {
    const tree = {
      $defs: { node: { type: 'object', properties: { v: { type: 'integer' }, kids: { type: 'array', items: { $ref: '#/$defs/node' } } }, required: ['v', 'kids'], additionalProperties: false } },
      $ref: '#/$defs/node',
    };
    expect(accepts(tree, '{"v":1,"kids":[{"v":2,"kids":[]},{"v":3,"kids":[{"v":4,"kids":[]}]}]}')).toBe(true);
    expect(accepts(tree, '{"v":1,"kids":[{"v":2}]}')).toBe(false);
    // every level is an object and an array: depth 4 allows two levels
    expect(accepts(tree, '{"v":1,"kids":[{"v":2,"kids":[]}]}', { maxDepth: 4 })).toBe(true);
    expect(accepts(tree, '{"v":1,"kids":[{"v":2,"kids":[{"v":3,"kids":[]}]}]}', { maxDepth: 4 })).toBe(false);
    expect(() => compileSchema({ $defs: { a: { type: 'object', properties: { x: { $ref: '#/$defs/a' } }, required: ['x'] } }, $ref: '#/$defs/a' })).toThrow(/no finite instance/);
  });

  it('free-form objects (json_object) and empty property lists', () => {
    expect(accepts({ type: 'object' }, '{"a":[1,{"b":null}],"c":"d","e":true}')).toBe(true);
    expect(accepts({ type: 'object' }, '[1]')).toBe(false);
    expect(accepts({ type: 'object', properties: {} }, '{}')).toBe(true);
    expect(accepts({ type: 'object', properties: {} }, '{"a":1}')).toBe(false);
    expect(accepts({ type: 'object', additionalProperties: { type: 'integer' } }, '{"a":1,"b":2}')).toBe(true);
    expect(accepts({ type: 'object', additionalProperties: { type: 'integer' } }, '{"a":"x"}')).toBe(false);
  });

  it('names the unsupported keyword', () => {
    const cases: [unknown, string][] = [
      [{ type: 'string', pattern: '^(a)\\1' }, 'pattern'],
      [{ type: 'string', format: 'email', maxLength: 2 }, 'format'],
      [{ type: 'string', minLength: 9999 }, 'minLength'],
      [{ type: 'number', minimum: 1e40 }, 'minimum'],
      [{ oneOf: [{ type: 'array' }, { type: 'array', maxItems: 2 }] }, 'oneOf'],
      [{ allOf: [{ type: 'string' }, { type: 'null' }] }, 'allOf'],
      [{ type: 'object', properties: { a: { type: 'object', properties: { b: { type: 'string', maxLength: -3 } } } } }, 'maxLength'],
      [{ type: 'object', patternProperties: { x: {} } }, 'patternProperties'],
      [{ $ref: 'https://example.com/s.json' }, '$ref'],
      [{ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: { type: 'string' } }, 'additionalProperties'],
      [{ type: 'array', items: { type: 'integer' }, uniqueItems: true }, 'uniqueItems'],
      [{ type: 'date' }, 'type'],
      [{ $defs: { a: { type: 'string', format: 'uuid', minLength: 40 } }, type: 'string' }, 'format'],
    ];
    for (const [schema, keyword] of cases) {
      let err: unknown;
      try {
        validateSupportedSchema(schema);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(schema)).toBeInstanceOf(UnsupportedSchemaError);
      expect((err as UnsupportedSchemaError).keyword).toBe(keyword);
      expect((err as Error).message).toContain(`"${keyword}"`);
    }
    expect(() => validateSupportedSchema(person)).not.toThrow();
  });
});
