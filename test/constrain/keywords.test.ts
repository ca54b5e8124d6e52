// The JSON Schema keywords Pydantic and Zod add to OpenAI's strict subset: minLength/maxLength,
// integer bounds, oneOf as a discriminated union, allOf of one schema ($ref with a description),
// $ref/$defs. A random "model" (uniform among the allowed tokens, real o200k_harmony vocabulary)
// is forced by seeded random schemas using them: every output must validate with ajv. Schemas
// outside the subset are refused with the keyword named.
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { createJsonValueConstraint, HARMONY_IDS, UnsupportedSchemaError, validateSupportedSchema, type TokenConstraint } from '../../src/constrain/index.js';
import { rng } from '../helpers/random.js';
import { testTokenizer } from '../tokenizer/test-tokenizer.js';

const tok = await testTokenizer();
const V = 201088;
const ajv = new Ajv({ strict: false });

function drive(c: TokenConstraint, r: () => number, limit = 20_000): number[] {
  const out: number[] = [];
  for (let i = 0; i < limit; i++) {
    const m = c.next();
    if (!m) return out;
    const ids: number[] = [];
    for (let w = 0; w < m.length; w++) for (let x = m[w]!; x; x &= x - 1) ids.push(w * 32 + 31 - Math.clz32(x & -x));
    expect(ids.length, `dead end after ${JSON.stringify(tok.decode(out))}`).toBeGreaterThan(0);
    const id = ids[Math.floor(r() * ids.length)]!;
    c.accept(id);
    out.push(id);
  }
  throw new Error('the constrained output did not end');
}

/** A random schema using the added keywords (and the old ones around them). */
function keywordSchema(r: () => number, depth = 0): Record<string, unknown> {
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const leaf = (): Record<string, unknown> => {
    switch (int(0, 5)) {
      case 0: {
        const min = int(0, 6);
        return { type: 'string', minLength: min, ...(r() < 0.7 ? { maxLength: min + int(0, 5) } : {}) };
      }
      case 1:
        return { type: 'string', maxLength: int(0, 3) };
      case 2: {
        const lo = int(-50, 50);
        return { type: 'integer', minimum: lo, ...(r() < 0.5 ? { exclusiveMaximum: lo + int(1, 30) } : { maximum: lo + int(0, 30) }) };
      }
      case 3:
        return { type: 'integer', exclusiveMinimum: int(-5, 5) };
      case 4:
        return { allOf: [{ $ref: '#/$defs/name' }], description: 'a Pydantic field' };
      default:
        return { type: ['string', 'null'], minLength: 2 };
    }
  };
  if (depth >= 2 || r() < 0.3) return leaf();
  if (r() < 0.5) {
    // A discriminated union, as Pydantic (Field(discriminator=...)) and Zod (z.discriminatedUnion) write it.
    const branch = (tag: string) => ({
      type: 'object',
      properties: { kind: { const: tag }, value: keywordSchema(r, depth + 1) },
      required: ['kind', 'value'],
      additionalProperties: false,
    });
    return { oneOf: [branch('a'), branch('b'), ...(r() < 0.5 ? [{ type: 'string', maxLength: 4 }] : [])] };
  }
  const n = int(1, 3);
  const properties: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) properties[`p${i}`] = keywordSchema(r, depth + 1);
  return { type: 'object', properties, required: Object.keys(properties).filter(() => r() < 0.7), additionalProperties: false };
}

describe('forced JSON with Pydantic and Zod keywords', () => {
  it('60 random schemas: every output validates with ajv', () => {
    const r = rng(20261207);
    const seen = new Set<string>();
    for (let n = 0; n < 60; n++) {
      const schema: Record<string, unknown> = { ...keywordSchema(r), $defs: { name: { type: 'string', minLength: 1, maxLength: 8 } } };
      const validate = ajv.compile(schema);
      const c = createJsonValueConstraint(schema, tok, { vocabSize: V, maxStringChars: 24, maxItems: 3, maxWhitespace: 2 });
      const ids = drive(c, r);
      expect(ids.at(-1)).toBe(HARMONY_IDS.return);
      const text = new TextDecoder().decode(tok.decodeBytes(ids.slice(0, -1)));
      const value = JSON.parse(text) as unknown;
      expect(validate(value), `${JSON.stringify(schema)}\n${text}\n${ajv.errorsText(validate.errors)}`).toBe(true);
      for (const k of ['minLength', 'maxLength', 'oneOf', 'allOf', 'exclusiveMinimum', 'exclusiveMaximum']) if (JSON.stringify(schema).includes(`"${k}"`)) seen.add(k);
    }
    expect([...seen].sort()).toEqual(['allOf', 'exclusiveMaximum', 'exclusiveMinimum', 'maxLength', 'minLength', 'oneOf']);
  });

  it('minLength is met exactly at its smallest: a string of minLength 3 and maxLength 3', () => {
    const r = rng(7);
    const schema = { type: 'string', minLength: 3, maxLength: 3 };
    for (let n = 0; n < 10; n++) {
      const ids = drive(createJsonValueConstraint(schema, tok, { vocabSize: V }), r);
      const value = JSON.parse(new TextDecoder().decode(tok.decodeBytes(ids.slice(0, -1)))) as string;
      expect([...value].length).toBe(3);
    }
  });

  it('refuses what it cannot force, naming the keyword', () => {
    const refused: Array<[unknown, string]> = [
      [{ oneOf: [{ type: 'object' }, { type: 'object', properties: { a: { type: 'string' } } }] }, 'oneOf'],
      [{ oneOf: [{ type: 'integer' }, { type: 'number' }] }, 'oneOf'],
      [{ allOf: [{ type: 'object' }, { type: 'string' }] }, 'allOf'],
      [{ type: 'string', minLength: 5, maxLength: 2 }, 'maxLength'],
      [{ type: 'string', minLength: 100000 }, 'minLength'],
      [{ type: 'string', pattern: '^(?=a)a+$' }, 'pattern'],
      [{ type: 'string', format: 'email', maxLength: 2 }, 'format'],
      [{ type: 'number', minimum: 0.5, maximum: 0.25 }, 'minimum'],
      [{ type: 'integer', multipleOf: 0.1 }, 'multipleOf'],
    ];
    for (const [schema, keyword] of refused) {
      let err: unknown;
      try {
        validateSupportedSchema(schema);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(schema)).toBeInstanceOf(UnsupportedSchemaError);
      expect((err as UnsupportedSchemaError).keyword).toBe(keyword);
    }
  });
});
