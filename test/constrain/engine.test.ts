// Constrained decoding on the real engine: a tiny random model with the full o200k_harmony
// vocabulary, the mask applied by the GPU sampler at every step (prefill's first token included).
import { Ajv } from 'ajv';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { createJsonSchemaConstraint, createToolCallConstraint, HARMONY_IDS } from '../../src/constrain/index.js';
import { syntheticConfig, syntheticGpuSource } from '../../src/model/synthetic.js';
import { testGpu } from '../helpers/gpu.js';
import { rng } from '../helpers/random.js';
import { randomSchema } from '../helpers/random-schema.js';
import { testTokenizer } from '../tokenizer/test-tokenizer.js';

const tok = await testTokenizer();
// 16 sequences at once: the schemas below run batched, each row with its own mask
const engine = await Engine.load(syntheticGpuSource(syntheticConfig('tiny')), { context: 512, robust: true, gpu: await testGpu(), maxNumSeqs: 16 });
afterAll(() => engine.destroy());
const V = engine.config.vocabSize;
const ajv = new Ajv({ strict: false });
const prompt = [
  HARMONY_IDS.start,
  ...tok.encodeOrdinary('user'),
  HARMONY_IDS.message,
  ...tok.encodeOrdinary('Weather in Paris as JSON?'),
  HARMONY_IDS.end,
  HARMONY_IDS.start,
  ...tok.encodeOrdinary('assistant'),
];
const text = (ids: number[]) => new TextDecoder().decode(tok.decodeBytes(ids));
const stopTokens = [HARMONY_IDS.return, HARMONY_IDS.call];

describe('engine with a constraint', () => {
  it('50 random nested schemas: every output of the random-weight model parses and validates', async () => {
    const r = rng(77);
    let tokens = 0;
    const runs: Promise<void>[] = [];
    for (let n = 0; n < 50; n++) {
      const defs = n % 5 === 0 ? { shared: randomSchema(r, 2) } : undefined;
      const schema: Record<string, unknown> = randomSchema(r, 0, defs);
      if (defs) schema.$defs = defs;
      const constraint = createJsonSchemaConstraint(schema, tok, {
        vocabSize: V,
        maxReasoningTokens: 0,
        maxStringChars: 4,
        maxItems: 2,
        maxWhitespace: 0,
      });
      runs.push(
        engine.generate(prompt, { maxTokens: 400, stopTokens, constraint, temperature: 1, seed: n }).then((res) => {
          expect(res.finishReason, text(res.tokens)).toBe('stop');
          tokens += res.tokens.length;
          const header = res.tokens.lastIndexOf(HARMONY_IDS.message);
          const out = text(res.tokens.slice(header + 1, -1));
          let value: unknown;
          expect(() => (value = JSON.parse(out)), out).not.toThrow();
          expect(ajv.validate(schema, value), `${JSON.stringify(schema)}\n${out}\n${ajv.errorsText()}`).toBe(true);
        }),
      );
    }
    await Promise.all(runs);
    expect(tokens).toBeGreaterThan(500);
  });

  it('response_format json_schema: greedy and sampled outputs parse and validate', async () => {
    expect(V).toBe(201088);
    const schema = {
      type: 'object',
      properties: { city: { type: 'string' }, temp: { type: 'integer', minimum: -50, maximum: 60 }, sky: { enum: ['sun', 'rain'] } },
      required: ['city', 'temp', 'sky'],
      additionalProperties: false,
    };
    for (const sampling of [{ temperature: 0 }, { temperature: 1, topP: 0.95, seed: 5 }]) {
      const constraint = createJsonSchemaConstraint(schema, tok, { vocabSize: V, maxReasoningTokens: 3, maxStringChars: 6, maxWhitespace: 0 });
      const res = await engine.generate(prompt, { maxTokens: 120, stopTokens, constraint, ...sampling });
      expect(res.finishReason, text(res.tokens)).toBe('stop');
      expect(constraint.done).toBe(true);
      expect(engine.stats.decodeStep).toMatchObject({ submits: 1, readbacks: 1 });
      const out = res.tokens;
      expect(out.at(-1)).toBe(HARMONY_IDS.return);
      const header = out.lastIndexOf(HARMONY_IDS.message);
      expect(text(out.slice(0, header + 1))).toMatch(/^<\|channel\|>analysis<\|message\|>[^]*<\|end\|><\|start\|>assistant<\|channel\|>final <\|constrain\|>json<\|message\|>$/);
      const value = JSON.parse(text(out.slice(header + 1, -1)));
      expect(ajv.validate(schema, value), JSON.stringify(value)).toBe(true);
    }
  });

  it('tool_choice "required": a call to one of the tools with valid arguments; the next generation is unmasked', async () => {
    const tools = [
      { type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'], additionalProperties: false } } },
      { type: 'function' as const, function: { name: 'get_time', parameters: { type: 'object', properties: { utc: { type: 'boolean' } }, required: ['utc'], additionalProperties: false } } },
    ];
    const constraint = createToolCallConstraint(tools, 'required', tok, { vocabSize: V, maxReasoningTokens: 0, maxStringChars: 6, maxWhitespace: 0 });
    const res = await engine.generate(prompt, { maxTokens: 80, stopTokens, constraint, temperature: 0.8, seed: 9 });
    const m = /^<\|channel\|>commentary to=functions\.(\w+) <\|constrain\|>json<\|message\|>([^]*)<\|call\|>$/.exec(text(res.tokens));
    expect(m, text(res.tokens)).not.toBeNull();
    const tool = tools.find((t) => t.function.name === m![1])!;
    expect(tool).toBeDefined();
    expect(ajv.validate(tool.function.parameters, JSON.parse(m![2]!))).toBe(true);
    // Without a constraint the random model's greedy first token is not the forced <|channel|>.
    const free = await engine.generate(prompt, { maxTokens: 1, temperature: 0 });
    expect(free.tokens[0]).not.toBe(HARMONY_IDS.channel);
  });
});
