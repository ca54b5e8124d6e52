// Speculative decoding in the server: `serve`'s flags (checked together), a draft model loaded
// beside the served one, the same greedy text as a server without it, and /metrics' counters
// and acceptance-rate histogram.
import { describe, expect, it } from 'vitest';
import { parseServeArgs, ServeUsageError } from '../../src/server/serve-command.js';
import { speculativeFromFlags } from '../../src/engine/load-model.js';
import { FIXED_LENGTH, MODEL, startServer } from './helpers.js';

const body = { model: MODEL, messages: [{ role: 'user' as const, content: 'Count to twenty, one number a line.' }], max_tokens: 24, temperature: 0, ...FIXED_LENGTH };

describe('speculative decoding in the server', () => {
  it('flags: checked together, with errors that name the flag', () => {
    expect(() => parseServeArgs(['--spec-tokens', '3'], {})).toThrow(/--spec-tokens needs --speculative/);
    expect(() => parseServeArgs(['--speculative', 'draft'], {})).toThrow(/--draft-model/);
    expect(() => parseServeArgs(['--speculative', 'eagle'], {})).toThrow(ServeUsageError);
    expect(() => parseServeArgs(['--speculative', 'ngram', '--spec-ngram', '3..2'], {})).toThrow(/--spec-ngram/);
    expect(() => parseServeArgs(['--speculative', 'ngram', '--spec-tokens', '17'], {})).toThrow(/--spec-tokens/);
    const c = parseServeArgs(['--draft-model', 'synthetic:tiny', '--spec-tokens', '3'], {});
    expect(speculativeFromFlags(c)).toEqual({ method: 'draft', tokens: 3, draftModel: 'synthetic:tiny' });
    expect(speculativeFromFlags(parseServeArgs([], { GPT_OSS_SPECULATIVE: 'ngram', GPT_OSS_SPEC_NGRAM: '2..5' }))).toEqual({ method: 'ngram', tokens: 4, ngram: { min: 2, max: 5 } });
    expect(speculativeFromFlags(parseServeArgs([], {}))).toBeUndefined();
  });

  it('a draft model: the same greedy text as without it; /metrics counts proposals and acceptance', async () => {
    const plain = await startServer({ maxNumSeqs: 2, context: 512 });
    const want = (await plain.client.chat.completions.create(body)).choices[0]!.message;
    await plain.close();
    const s = await startServer({ maxNumSeqs: 2, context: 512, speculative: { method: 'draft', tokens: 4, draftModel: 'synthetic:tiny' } });
    try {
      const got = (await s.client.chat.completions.create(body)).choices[0]!.message;
      expect(got.content).toBe(want.content);
      const m = await (await fetch(s.baseURL.replace('/v1', '/metrics'))).text();
      const value = (name: string) => Number(new RegExp(`^${name}\\{model="[^"]+"\\} (\\d+)$`, 'm').exec(m)?.[1]);
      expect(value('gpt_oss_spec_proposed_tokens')).toBeGreaterThan(0);
      // the draft is the served model itself: every proposal agrees
      expect(value('gpt_oss_spec_accepted_tokens')).toBe(value('gpt_oss_spec_proposed_tokens'));
      const count = Number(/^gpt_oss_spec_acceptance_rate_count\{model="[^"]+"\} (\d+)$/m.exec(m)?.[1]);
      expect(count).toBe(value('gpt_oss_spec_verifications'));
      expect(Number(/^gpt_oss_spec_acceptance_rate_bucket\{model="[^"]+",le="0.999"\} (\d+)$/m.exec(m)?.[1])).toBe(0);
      expect(m).toMatch(/^gpt_oss_spec_acceptance_rate_bucket\{model="[^"]+",le="\+Inf"\} \d+$/m);
    } finally {
      await s.close();
    }
  });
});
