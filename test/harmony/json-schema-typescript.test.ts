// JSON Schema to TypeScript, rule by rule (README section 5.2). The vectors cover the common
// cases; these pin the rules they do not reach. Expected strings are written out from the rules.

import { describe, expect, it } from 'vitest';
import { schemaToTypeScript, toolsSectionText } from '../../src/harmony/index.js';

describe('schemaToTypeScript', () => {
  it('maps scalar types, arrays and unknown constructs', () => {
    expect(schemaToTypeScript({ type: 'integer' })).toBe('number');
    expect(schemaToTypeScript({ type: 'boolean' })).toBe('boolean');
    expect(schemaToTypeScript({ type: 'null' })).toBe('any');
    expect(schemaToTypeScript({ type: ['integer', 'string', 7] })).toBe('number | string');
    expect(schemaToTypeScript({ type: 'array' })).toBe('Array<any>');
    expect(schemaToTypeScript({ type: 'array', items: null })).toBe('any[]');
    expect(schemaToTypeScript({ type: 'array', items: { type: 'array', items: { type: 'number' } } })).toBe('number[][]');
    for (const s of [{}, { anyOf: [{ type: 'string' }] }, { allOf: [] }, { $ref: '#/x' }, { const: 1 }, true, null]) expect(schemaToTypeScript(s)).toBe('any');
    expect(schemaToTypeScript({ type: 'string', enum: ['a', 1, 'b'] })).toBe('"a" | "b"');
    expect(schemaToTypeScript({ type: 'string', enum: [] })).toBe('string');
  });

  it('renders objects: empty, nested (indented by 4, described twice), required and optional', () => {
    expect(schemaToTypeScript({ type: 'object', properties: {} })).toBe('{\n}');
    expect(schemaToTypeScript({ type: 'object' })).toBe('{\n}');
    expect(
      schemaToTypeScript({
        type: 'object',
        properties: { a: { type: 'object', description: 'inner', properties: { b: { type: 'string', description: 'deep' } }, required: ['b'] } },
        required: ['a'],
      }),
    ).toBe('{\n// inner\na:     // inner\n{\n    // deep\n    b: string,\n    },\n}');
  });

  it('writes defaults: quoted strings, bare enum members, JSON otherwise', () => {
    const schema = {
      type: 'object',
      properties: {
        s: { type: 'string', default: 'x"y' },
        e: { type: 'string', enum: ['a', 'b'], default: 'a' },
        n: { type: 'number', default: 1.5 },
        o: { type: 'object', default: { k: [1, null] } },
        z: { type: 'string', default: null },
      },
    };
    expect(schemaToTypeScript(schema)).toBe(
      '{\ns?: string, // default: "x"y"\ne?: "a" | "b", // default: a\nn?: number, // default: 1.5\no?: {\n    }, // default: {"k":[1,null]}\nz?: string, // default: null\n}',
    );
  });

  it('adds | null for nullable once, and ignores nullable on type arrays', () => {
    const schema = { type: 'object', properties: { a: { type: 'string', nullable: true }, b: { type: ['string', 'null'], nullable: true }, c: { type: ['number'], nullable: true } } };
    expect(schemaToTypeScript(schema)).toBe('{\na?: string | null,\nb?: string | null,\nc?: number | null,\n}');
  });

  it('prints titles, examples (strings only, header always) before the property', () => {
    const schema = { type: 'object', properties: { p: { type: 'string', title: 'T', description: 'D', examples: [1, 'x'] } } };
    expect(schemaToTypeScript(schema)).toBe('{\n// T\n//\n// D\n// Examples:\n// - "x"\np?: string,\n}');
  });

  it('renders a top-level oneOf with variant comments', () => {
    const schema = { oneOf: [{ type: 'string', description: 'text', default: 'hi' }, { type: 'string', enum: ['a'], default: 'a', nullable: true }, { type: 'number' }] };
    expect(schemaToTypeScript(schema, '  ')).toBe('\n   | string // text default: "hi"\n   | "a" | null // default: "a"\n   | number');
  });

  it('renders a oneOf property: shared description once, defaults, variant lines, closing comma', () => {
    const schema = {
      type: 'object',
      properties: {
        same: { description: 'd', oneOf: [{ type: 'string', description: 'd' }, { type: 'number', description: 'other' }] },
        diff: { description: 'd', default: 'x', oneOf: [{ type: 'string', description: 'first' }, { type: 'boolean', description: 'd' }] },
      },
      required: ['same'],
    };
    expect(schemaToTypeScript(schema)).toBe(
      '{\nsame:\n | string\n | number // other\n,\n// d\n// default: "x"\ndiff?:\n | string\n | boolean\n,\n}',
    );
  });

  it('treats a oneOf key as present even when it is not an array (the library does)', () => {
    const schema = { type: 'object', properties: { p: { type: 'string', oneOf: null, description: 'hidden', default: 'x' } } };
    expect(schemaToTypeScript(schema)).toBe('{\np?: string,\n}');
  });
});

describe('toolsSectionText', () => {
  it('sorts namespaces, splits descriptions like Rust str::lines, and writes tools without parameters', () => {
    const text = toolsSectionText({
      zeta: { name: 'zeta', description: 'plain\r\nlines\n', tools: [] },
      alpha: { name: 'alpha', description: 'ns doc', tools: [{ name: 'go', description: '' }, { name: 'run', description: 'a\n\nb', parameters: {} }] },
    });
    expect(text).toBe(
      '# Tools\n\n## alpha\n\n// ns doc\nnamespace alpha {\n\ntype go = () => any;\n\n// a\n// \n// b\ntype run = (_: any) => any;\n\n} // namespace alpha\n\n## zeta\n\nplain\nlines',
    );
  });
});
