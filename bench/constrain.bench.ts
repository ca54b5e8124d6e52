// Per-step cost of the constrained-decoding mask (TokenConstraint.next() over the full 201088-token
// o200k_harmony vocabulary) for the 6 compatibility-test tool schemas and a large nested schema.
//
//   npx vitest bench bench/constrain.bench.ts --run
//
// A seeded random "model" (uniform among allowed tokens) records one token sequence per schema;
// each bench iteration replays it (next() + accept() per step), so ms per step = 1000 / (hz x
// steps). Before the benches, the per-step distribution (mean, p50, p99, max) is printed.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { bench, describe } from 'vitest';
import { createJsonValueConstraint, createToolCallConstraint, VocabIndex, type FunctionTool, type TokenConstraint } from '../src/constrain/index.js';
import { rng } from '../test/helpers/random.js';
import { repoRoot, testTokenizer } from '../test/tokenizer/test-tokenizer.js';

const tok = await testTokenizer();
const V = 201088;
let t0 = performance.now();
VocabIndex.for(tok, { vocabSize: V });
console.log(`vocabulary index (tries + plain-token masks): ${(performance.now() - t0).toFixed(0)} ms, once per tokenizer`);

const tools = (JSON.parse(readFileSync(path.join(repoRoot, 'test/harmony/fixtures/compat-tools.json'), 'utf8')) as { tools: FunctionTool[] }).tools;
const names = tools.map((t) => ('function' in t ? t.function.name : t.name));

const address = { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' }, zip: { type: 'string' }, country: { type: 'string', enum: ['US', 'FR', 'DE', 'JP', 'BR'] } }, required: ['street', 'city', 'zip', 'country'], additionalProperties: false };
const large = {
  $defs: { address, money: { type: 'object', properties: { amount: { type: 'number' }, currency: { enum: ['USD', 'EUR', 'JPY'] } }, required: ['amount', 'currency'], additionalProperties: false } },
  type: 'object',
  properties: {
    order_id: { type: 'string' },
    status: { type: 'string', enum: ['pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded'] },
    customer: { type: 'object', properties: { name: { type: 'string' }, email: { type: 'string' }, phone: { type: ['string', 'null'] }, vip: { type: 'boolean' }, billing: { $ref: '#/$defs/address' }, shipping: { anyOf: [{ $ref: '#/$defs/address' }, { type: 'null' }] } }, required: ['name', 'email', 'phone', 'vip', 'billing', 'shipping'], additionalProperties: false },
    lines: { type: 'array', maxItems: 4, items: { type: 'object', properties: { sku: { type: 'string' }, qty: { type: 'integer', minimum: 1, maximum: 999 }, price: { $ref: '#/$defs/money' }, tags: { type: 'array', items: { type: 'string' }, maxItems: 3 }, options: { type: 'object', properties: { gift: { type: 'boolean' }, note: { type: ['string', 'null'] } }, required: ['gift', 'note'], additionalProperties: false } }, required: ['sku', 'qty', 'price', 'tags', 'options'], additionalProperties: false } },
    total: { $ref: '#/$defs/money' },
    discounts: { type: 'array', items: { anyOf: [{ type: 'object', properties: { code: { type: 'string' }, pct: { type: 'number' } }, required: ['code', 'pct'], additionalProperties: false }, { type: 'object', properties: { code: { type: 'string' }, amount: { $ref: '#/$defs/money' } }, required: ['code', 'amount'], additionalProperties: false }] }, maxItems: 2 },
    metadata: { type: 'object', properties: { source: { enum: ['web', 'app', 'phone'] }, created_at: { type: 'string' }, priority: { type: 'integer' }, flags: { type: 'array', items: { enum: ['fraud_check', 'expedite', 'hold'] } } }, required: ['source', 'created_at', 'priority', 'flags'], additionalProperties: false },
  },
  required: ['order_id', 'status', 'customer', 'lines', 'total', 'discounts', 'metadata'],
  additionalProperties: false,
};

function allowed(m: Uint32Array): number[] {
  const out: number[] = [];
  for (let w = 0; w < m.length; w++) for (let x = m[w]!; x; x &= x - 1) out.push(w * 32 + 31 - Math.clz32(x & -x));
  return out;
}

/** Records a random trajectory and the time of each next(). */
function record(make: () => TokenConstraint, seed: number): { ids: number[]; ms: number[] } {
  const r = rng(seed);
  const c = make();
  const ids: number[] = [];
  const ms: number[] = [];
  for (;;) {
    const t = performance.now();
    const m = c.next();
    ms.push(performance.now() - t);
    if (!m) break;
    const a = allowed(m);
    const id = a[Math.floor(r() * a.length)]!;
    c.accept(id);
    ids.push(id);
  }
  ms.pop();
  return { ids, ms };
}

const opts = { vocabSize: V, maxStringChars: 48, maxItems: 4, maxWhitespace: 1 };
const cases: { name: string; make: () => TokenConstraint }[] = [
  ...names.map((n) => ({ name: `tool ${n} (harmony framing, reasoning 0)`, make: () => createToolCallConstraint(tools, n, tok, { ...opts, maxReasoningTokens: 0 }) })),
  { name: 'tool_choice required (6 tools)', make: () => createToolCallConstraint(tools, 'required', tok, { ...opts, maxReasoningTokens: 0 }) },
  { name: 'large nested schema (bare JSON)', make: () => createJsonValueConstraint(large, tok, opts) },
];

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const recorded = cases.map((c, i) => {
  record(c.make, 100 + i); // warm-up (JIT)
  const rec = record(c.make, 100 + i);
  const mean = rec.ms.reduce((a, b) => a + b, 0) / rec.ms.length;
  console.log(
    `${c.name.padEnd(48)} steps ${String(rec.ms.length).padStart(4)}  mean ${mean.toFixed(3)} ms  p50 ${pct(rec.ms, 0.5).toFixed(3)}  p99 ${pct(rec.ms, 0.99).toFixed(3)}  max ${Math.max(...rec.ms).toFixed(3)}`,
  );
  return { ...c, ids: rec.ids };
});

describe('constrained-decoding mask: one iteration = one recorded generation', () => {
  for (const c of recorded) {
    bench(`${c.name}: ${c.ids.length} steps`, () => {
      const k = c.make();
      for (const id of c.ids) {
        k.next();
        k.accept(id);
      }
    }, { time: 1000 });
  }
});
