// The constraint drivers with a random "model" over the real o200k_harmony vocabulary: at every
// step pick uniformly among the allowed tokens. Whatever it picks, the output must parse and
// validate (ajv) against the schema: 50 seeded random schemas, the compatibility-test tools with
// named and required tool_choice, and json_object.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import {
  createJsonSchemaConstraint,
  createJsonValueConstraint,
  createToolCallConstraint,
  HARMONY_IDS,
  JSON_OBJECT_SCHEMA,
  UnsupportedSchemaError,
  type FunctionTool,
  type TokenConstraint,
} from '../../src/constrain/index.js';
import { rng } from '../helpers/random.js';
import { randomSchema } from '../helpers/random-schema.js';
import { repoRoot, testTokenizer } from '../tokenizer/test-tokenizer.js';

const tok = await testTokenizer();
const V = 201088;
const ajv = new Ajv({ strict: false });

function allowedIds(m: Uint32Array): number[] {
  const out: number[] = [];
  for (let w = 0; w < m.length; w++) {
    let x = m[w]!;
    while (x) {
      const low = x & -x;
      out.push(w * 32 + 31 - Math.clz32(low));
      x ^= low;
    }
  }
  return out;
}

/** Drives a constraint with a uniform random choice among the allowed tokens; returns the ids. */
function drive(c: TokenConstraint, r: () => number, limit = 20_000, bias?: (ids: number[]) => number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < limit; i++) {
    const m = c.next();
    if (!m) return out;
    expect(m.length).toBe(Math.ceil(V / 32));
    let ids = allowedIds(m);
    expect(ids.length, `dead end after ${JSON.stringify(tok.decode(out))}`).toBeGreaterThan(0);
    if (bias) ids = bias(ids);
    const id = ids[Math.floor(r() * ids.length)]!;
    c.accept(id);
    out.push(id);
  }
  throw new Error('the constrained output did not end');
}

const decodeText = (ids: number[]) => new TextDecoder().decode(tok.decodeBytes(ids));

describe('random model under constraints', () => {
  it('50 random schemas: every output parses and validates', () => {
    const r = rng(20250805);
    let tokens = 0;
    for (let n = 0; n < 50; n++) {
      const defs = n % 5 === 0 ? { shared: randomSchema(r, 2) } : undefined;
      const schema: Record<string, unknown> = randomSchema(r, 0, defs);
      if (defs) schema.$defs = defs;
      const validate = ajv.compile(schema);
      const c = createJsonValueConstraint(schema, tok, { vocabSize: V, maxStringChars: 24, maxItems: 3, maxWhitespace: 2 });
      const ids = drive(c, r);
      tokens += ids.length;
      expect(ids.at(-1)).toBe(HARMONY_IDS.return);
      const text = decodeText(ids.slice(0, -1));
      let value: unknown;
      expect(() => (value = JSON.parse(text)), text).not.toThrow();
      expect(validate(value), `${JSON.stringify(schema)}\n${text}\n${ajv.errorsText(validate.errors)}`).toBe(true);
    }
    expect(tokens).toBeGreaterThan(500);
  });

  it('a recursive schema terminates within the depth bound and validates', () => {
    const tree = {
      $defs: {
        node: {
          type: 'object',
          properties: { label: { type: 'string' }, kids: { type: 'array', items: { $ref: '#/$defs/node' } } },
          required: ['label', 'kids'],
          additionalProperties: false,
        },
      },
      $ref: '#/$defs/node',
    };
    const validate = ajv.compile(tree);
    const r = rng(3);
    for (let i = 0; i < 3; i++) {
      const c = createJsonValueConstraint(tree, tok, { vocabSize: V, maxDepth: 5, maxItems: 2 });
      const ids = drive(c, r);
      const value = JSON.parse(decodeText(ids.slice(0, -1)));
      expect(validate(value)).toBe(true);
    }
  });

  it('json_schema and json_object through the harmony framing, with capped reasoning', () => {
    const schema = {
      type: 'object',
      properties: { city: { type: 'string' }, days: { type: 'integer' }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city', 'days', 'unit'],
      additionalProperties: false,
    };
    const r = rng(11);
    for (const [s, maxReasoningTokens] of [[schema, 5], [schema, 0], [JSON_OBJECT_SCHEMA, 3]] as const) {
      const c = createJsonSchemaConstraint(s, tok, { vocabSize: V, maxReasoningTokens, maxWhitespace: 1, maxStringChars: 40 });
      const ids = drive(c, r);
      expect(c.done).toBe(true);
      const msgAt = ids.lastIndexOf(HARMONY_IDS.message);
      expect(decodeText(ids.slice(0, msgAt + 1)).endsWith('<|channel|>final <|constrain|>json<|message|>')).toBe(true);
      if (maxReasoningTokens) {
        expect(ids[0]).toBe(HARMONY_IDS.channel);
        const end = ids.indexOf(HARMONY_IDS.end);
        expect(end).toBeGreaterThan(0);
        expect(end - ids.indexOf(HARMONY_IDS.message) - 1).toBeLessThanOrEqual(maxReasoningTokens);
        expect(decodeText(ids.slice(end, msgAt + 1))).toBe('<|end|><|start|>assistant<|channel|>final <|constrain|>json<|message|>');
      } else {
        expect(decodeText(ids.slice(0, msgAt + 1))).toBe('<|channel|>final <|constrain|>json<|message|>');
      }
      expect(ids.at(-1)).toBe(HARMONY_IDS.return);
      const value = JSON.parse(decodeText(ids.slice(msgAt + 1, -1)));
      expect(ajv.validate(s, value)).toBe(true);
      expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true);
    }
  });

  const fixture = JSON.parse(readFileSync(path.join(repoRoot, 'test/harmony/fixtures/compat-tools.json'), 'utf8')) as { tools: FunctionTool[] };
  const tools = fixture.tools;
  const names = tools.map((t) => ('function' in t ? t.function.name : t.name));
  const params = (name: string) => {
    const t = tools[names.indexOf(name)]!;
    return ('function' in t ? t.function.parameters : t.parameters) as object;
  };
  const parseCall = (ids: number[]) => {
    const text = decodeText(ids);
    const m = /^(?:<\|channel\|>analysis<\|message\|>[^]*?<\|end\|><\|start\|>assistant)?<\|channel\|>commentary to=functions\.([A-Za-z_]+) <\|constrain\|>json<\|message\|>([^]*)<\|call\|>$/.exec(text);
    expect(m, text).not.toBeNull();
    return { name: m![1]!, args: JSON.parse(m![2]!) as unknown };
  };

  it('tool_choice naming each compatibility-test tool: the arguments validate', () => {
    expect(tools).toHaveLength(6);
    const r = rng(7);
    for (const name of names) {
      for (const choice of [name, { type: 'function' as const, function: { name } }]) {
        const c = createToolCallConstraint(tools, choice, tok, { vocabSize: V, maxReasoningTokens: 2, maxStringChars: 32, maxItems: 3, maxWhitespace: 1 });
        const call = parseCall(drive(c, r));
        expect(call.name).toBe(name);
        expect(ajv.validate(params(name), call.args), `${name}: ${JSON.stringify(call.args)}`).toBe(true);
      }
    }
  });

  it('tool_choice "required": the model picks a name among the tools, and its arguments validate', () => {
    const r = rng(8);
    const seen = new Set<string>();
    for (let i = 0; i < 24; i++) {
      const c = createToolCallConstraint(tools, 'required', tok, { vocabSize: V, maxReasoningTokens: i % 2, maxStringChars: 32, maxItems: 3, maxWhitespace: 1 });
      const call = parseCall(drive(c, r));
      expect(names).toContain(call.name);
      seen.add(call.name);
      expect(ajv.validate(params(call.name), call.args), `${call.name}: ${JSON.stringify(call.args)}`).toBe(true);
    }
    expect(seen.size).toBeGreaterThan(2);
  });

  it('unsupported schemas and unknown tools are refused with the keyword', () => {
    expect(() => createJsonSchemaConstraint({ type: 'string', pattern: '(?=a)+' }, tok)).toThrow(UnsupportedSchemaError);
    expect(() => createJsonSchemaConstraint({ type: 'object', properties: { d: { type: 'string', format: 'date', maxLength: 4 } } }, tok)).toThrow(/"format"/);
    const bad = [...tools, { type: 'function' as const, function: { name: 'f', parameters: { type: 'object', properties: { n: { type: 'number', minimum: 1, maximum: 0 } } } } }];
    expect(() => createToolCallConstraint(bad, 'required', tok)).toThrow(/tool f: .*"minimum"/);
    expect(() => createToolCallConstraint(tools, 'nope', tok)).toThrow(/not among the tools/);
    // accept() refuses a token the mask did not allow
    const c = createToolCallConstraint(tools, 'get_weather', tok, { maxReasoningTokens: 0 });
    c.next();
    expect(() => c.accept(HARMONY_IDS.message)).toThrow(/expected token/);
  });
});
