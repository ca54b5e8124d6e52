// Logprobs, logit bias, penalties and min-p through the whole engine on an oracle checkpoint:
// each sampled token's logprob and top logprobs equal the float64 log-softmax of the logits row it
// was drawn from (onLogits reads that row back), greedy decoding with a repetition or frequency
// penalty equals the float64 greedy walk over the penalised rows, a logit bias forces its token,
// and rows without processing in the same batch keep their tokens.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, type GenerateOptions, type TokenLogprob } from '../../src/engine/engine.js';
import { testGpu } from '../helpers/gpu.js';
import { manifest, ORACLE } from '../helpers/oracle.js';
import { logSoftmax64 } from '../helpers/sampling-ref.js';

const gpu = await testGpu();
const MODEL = 'tiny-e32k4';
const man = manifest(MODEL);
let engine: Engine;
beforeAll(async () => {
  engine = await Engine.load(join(ORACLE, MODEL, 'hf'), { gpu, context: 128, maxBatchTokens: 64, kvDtype: 'f32' });
});
afterAll(() => engine?.destroy());

async function run(o: Omit<GenerateOptions, 'onToken' | 'onLogits'>) {
  const rows: Float32Array[] = [];
  const lps: (TokenLogprob | undefined)[] = [];
  const r = await engine.generate(man.prompt_ids, { ...o, onLogits: (l) => rows.push(l), onToken: (_, lp) => void lps.push(lp) });
  return { tokens: r.tokens, rows, lps };
}

describe(`logits processing on ${MODEL}`, () => {
  it('logprobs and the top 5 of every token, greedy and sampled, equal the float64 log-softmax of its row', async () => {
    for (const o of [{ temperature: 0 }, { temperature: 1, seed: 7 }]) {
      const { tokens, rows, lps } = await run({ maxTokens: 12, logprobs: 5, ...o });
      expect(lps).toHaveLength(tokens.length);
      tokens.forEach((id, i) => {
        const ls = logSoftmax64(rows[i]!);
        expect(Math.abs(lps[i]!.logprob - ls[id]!), `token ${i}`).toBeLessThan(1e-4);
        const order = [...ls.keys()].sort((a, b) => ls[b]! - ls[a]!).slice(0, 5);
        expect(lps[i]!.top.map((t) => t.id)).toEqual(order);
        lps[i]!.top.forEach((t) => expect(Math.abs(t.logprob - ls[t.id]!)).toBeLessThan(1e-4));
      });
    }
    // greedy with logprobs picks the oracle's tokens
    expect((await run({ maxTokens: 24, temperature: 0, logprobs: 0 })).tokens).toEqual(man.generated_ids);
  });

  it('greedy with a repetition and a frequency penalty: each processed row equals the float64 penalty of the raw row, and greedy takes its argmax', async () => {
    for (const pen of [{ repetitionPenalty: 1.8 }, { frequencyPenalty: 1.5, presencePenalty: 0.5 }]) {
      const { tokens, rows } = await run({ maxTokens: 24, temperature: 0, ...pen });
      expect(tokens).not.toEqual(man.generated_ids);
      for (let i = 0; i < tokens.length; i += 5) {
        const row = rows[i]!;
        expect(tokens[i], `token ${i}`).toBe(row.indexOf(Math.max(...row)));
        // the raw row at the same history, unpenalised, penalised here in float64
        const history = [...man.prompt_ids, ...tokens.slice(0, i)];
        const raw = (await (async () => {
          let l: Float32Array | undefined;
          await engine.generate(history, { maxTokens: 1, temperature: 0, onLogits: (x) => (l = x) });
          return l!;
        })());
        const want = Float64Array.from(raw);
        const out = tokens.slice(0, i);
        const counts = new Map<number, number>();
        for (const id of out) counts.set(id, (counts.get(id) ?? 0) + 1);
        const { repetitionPenalty: rp = 1, presencePenalty: pp = 0, frequencyPenalty: fp = 0 } = pen as { repetitionPenalty?: number; presencePenalty?: number; frequencyPenalty?: number };
        if (rp !== 1) for (const id of new Set(history)) want[id] = raw[id]! > 0 ? raw[id]! / rp : raw[id]! * rp;
        for (const [id, c] of counts) want[id] = want[id]! - pp - fp * c;
        for (let j = 0; j < want.length; j++) expect(Math.abs(row[j]! - want[j]!), `token ${i} logit ${j}`).toBeLessThan(1e-4);
      }
    }
  });

  it('a logit bias of +100 forces its token; -100 on every oracle token changes them all; min_p 1 is greedy', async () => {
    const forced = 123;
    const { tokens } = await run({ maxTokens: 6, temperature: 1, seed: 3, logitBias: new Map([[forced, 100]]) });
    expect(tokens).toEqual(new Array(6).fill(forced));
    const banned = new Map(man.generated_ids.map((id: number) => [id, -100] as [number, number]));
    const other = await run({ maxTokens: 24, temperature: 0, logitBias: banned });
    for (const id of other.tokens) expect(banned.has(id)).toBe(false);
    const minP = await run({ maxTokens: 24, temperature: 1, seed: 11, minP: 1 });
    expect(minP.tokens).toEqual(man.generated_ids);
  });

  it('rejects bad settings with a clear error', async () => {
    await expect(engine.generate([1, 2], { maxTokens: 1, logprobs: 21 })).rejects.toThrow(/logprobs 21/);
    await expect(engine.generate([1, 2], { maxTokens: 1, repetitionPenalty: 0 })).rejects.toThrow(/repetition penalty/);
    await expect(engine.generate([1, 2], { maxTokens: 1, logitBias: new Map([[99999, 1]]) })).rejects.toThrow(/outside the vocabulary/);
  });
});
