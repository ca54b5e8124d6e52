// `render --request` and `render --parse`.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderCommand } from '../../src/harmony/render-command.js';
import { ensureHarmonyTokenizerJson, type HarmonyTokenizer } from '../../src/tokenizer/index.js';
import { testCacheDir, testTokenizer } from '../tokenizer/test-tokenizer.js';
import { vectorText } from './shared-vectors.js';

let tokenizer: HarmonyTokenizer;
let dir: string;
let tokenizerDir: string;

beforeAll(async () => {
  tokenizer = await testTokenizer();
  tokenizerDir = ensureHarmonyTokenizerJson(testCacheDir);
  dir = mkdtempSync(path.join(tmpdir(), 'render-command-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the command; the tokenizer comes from the real loader only when asked (it takes seconds). */
async function run(args: string[], realLoader = false): Promise<{ code: number; stdout: string; stderr: string; tokenizerDirs: unknown[] }> {
  let stdout = '';
  let stderr = '';
  const tokenizerDirs: unknown[] = [];
  const code = await renderCommand(args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    ...(realLoader
      ? {}
      : {
          loadTokenizer: async (d: string | undefined) => {
            tokenizerDirs.push(d);
            return tokenizer;
          },
        }),
  });
  return { code, stdout, stderr, tokenizerDirs };
}

function file(name: string, content: unknown): string {
  const p = path.join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}

describe('render command', () => {
  it('--request prints the token ids and text of the prompt', async () => {
    const request = file('req.json', {
      model: 'gpt-oss-20b',
      reasoning_effort: 'low',
      messages: [
        { role: 'system', content: "Answer the user's questions like a robot." },
        { role: 'user', content: 'What is the capital of the largest country in the world?' },
      ],
    });
    const { code, stdout } = await run(['--request', request, '--tokenizer', tokenizerDir, '--date', '2025-06-28'], true);
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as { token_ids: number[]; text: string };
    expect(out.text).toBe(
      vectorText('test_simple_convo_low_effort.txt').replace('Knowledge cutoff: 2024-06\n', 'Knowledge cutoff: 2024-06\nCurrent date: 2025-06-28\n'),
    );
    expect(tokenizer.decode(out.token_ids)).toBe(out.text);
  });

  it('--responses renders a Responses request', async () => {
    const request = file('responses.json', { input: 'hi', instructions: 'Be brief.' });
    const { code, stdout, tokenizerDirs } = await run(['--responses', request, '--tokenizer', 'some/dir']);
    expect(code).toBe(0);
    expect(tokenizerDirs).toEqual(['some/dir']);
    expect((JSON.parse(stdout) as { text: string }).text).toContain('# Instructions\n\nBe brief.<|end|><|start|>user<|message|>hi<|end|><|start|>assistant');
  });

  it('--parse prints the messages of output token ids', async () => {
    const ids = tokenizer.encodeWithSpecialTokens(
      '<|channel|>analysis<|message|>Need tool.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}<|call|>',
    );
    const { code, stdout } = await run(['--parse', file('out.json', ids)]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      messages: [
        { role: 'assistant', channel: 'analysis', content: 'Need tool.' },
        { role: 'assistant', channel: 'commentary', recipient: 'functions.get_weather', content_type: '<|constrain|>json', content: '{"city":"Paris"}' },
      ],
      warnings: [],
      finish_reason: 'tool_calls',
    });
    // A transcript that starts with <|start|> is parsed with the role unknown.
    const full = await run(['--parse', file('full.json', tokenizer.encodeWithSpecialTokens('<|start|>user<|message|>hi<|end|>'))]);
    expect((JSON.parse(full.stdout) as { messages: unknown[] }).messages).toEqual([{ role: 'user', content: 'hi' }]);
  });

  it('--parse --strict fails on malformed output; without it, warns', async () => {
    const ids = file('bad.json', tokenizer.encodeWithSpecialTokens('<|channel|>final Hello<|return|>'));
    const strict = await run(['--parse', ids, '--strict']);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(/parse error/);
    const lenient = await run(['--parse', ids]);
    expect(lenient.code).toBe(0);
    expect((JSON.parse(lenient.stdout) as { warnings: string[] }).warnings).toHaveLength(1);
  });

  it('prints an OpenAI error for an invalid request, and usage for bad arguments', async () => {
    const bad = await run(['--request', file('bad-req.json', { messages: [] })]);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stderr)).toMatchObject({ error: { param: 'messages', type: 'invalid_request_error' } });
    expect((await run([])).code).toBe(2);
    expect((await run(['--request', 'a', '--parse', 'b'])).code).toBe(2);
    expect((await run(['--bogus'])).code).toBe(2);
    const missing = await run(['--request', path.join(dir, 'nope.json')]);
    expect(missing.code).toBe(1);
    expect((await run(['--help'])).stdout).toMatch(/usage/);
  });
});
