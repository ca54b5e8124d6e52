// The serve flags of the client-compatibility features: --strict-params, --reasoning-key,
// --cors-origins, from flags and from their environment variables; and the reasoning seal itself.
import { describe, expect, it } from 'vitest';
import { ReasoningSeal, parseReasoningKey } from '../../src/server/reasoning-seal.js';
import { parseServeArgs, ServeUsageError } from '../../src/server/serve-command.js';

const KEY = 'ab'.repeat(32);

describe('client flags', () => {
  it('flags and environment variables', () => {
    expect(parseServeArgs([], {})).not.toHaveProperty('strictParams');
    expect(parseServeArgs(['--strict-params', '--reasoning-key', KEY, '--cors-origins', 'https://a.example, https://b.example'], {})).toMatchObject({
      strictParams: true,
      reasoningKey: KEY,
      corsOrigins: ['https://a.example', 'https://b.example'],
    });
    expect(parseServeArgs([], { GPT_OSS_STRICT_PARAMS: 'true', GPT_OSS_REASONING_KEY: KEY, GPT_OSS_CORS_ORIGINS: '*' })).toMatchObject({ strictParams: true, reasoningKey: KEY, corsOrigins: ['*'] });
    expect(parseServeArgs([], { GPT_OSS_STRICT_PARAMS: '0' })).not.toHaveProperty('strictParams');
    expect(() => parseServeArgs([], { GPT_OSS_STRICT_PARAMS: 'maybe' })).toThrow(ServeUsageError);
    expect(() => parseServeArgs(['--reasoning-key', 'short'], {})).toThrow(/--reasoning-key/);
  });

  it('the seal: round trip, base64 keys, another key or a changed byte opens to null', () => {
    const a = new ReasoningSeal(KEY);
    const text = 'Reasoning with ünïcode and 🙂.';
    const sealed = a.seal(text);
    expect(sealed).not.toContain('Reasoning');
    expect(a.open(sealed)).toBe(text);
    // A fresh IV each time: the same text never seals the same way.
    expect(a.seal(text)).not.toBe(sealed);
    expect(new ReasoningSeal(Buffer.from(KEY, 'hex').toString('base64')).open(sealed)).toBe(text);
    expect(parseReasoningKey(Buffer.from(KEY, 'hex').toString('base64url'))).toEqual(Buffer.from(KEY, 'hex'));
    expect(new ReasoningSeal('cd'.repeat(32)).open(sealed)).toBeNull();
    expect(new ReasoningSeal().open(sealed)).toBeNull();
    const raw = Buffer.from(sealed.slice('gptoss1.'.length), 'base64url');
    for (const at of [0, 12, 20, raw.length - 1]) {
      const bad = Buffer.from(raw);
      bad[at] = bad[at]! ^ 1;
      expect(a.open(`gptoss1.${bad.toString('base64url')}`)).toBeNull();
    }
    expect(a.open('not sealed')).toBeNull();
    expect(a.open('gptoss1.')).toBeNull();
  });
});
