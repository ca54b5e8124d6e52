// The real Claude Code CLI (2.1.328) against this server's /v1/messages, configured only by
// ANTHROPIC_BASE_URL and an API key (the README's setup). First against the scripted engine, so
// the whole tool loop is known: the model calls Claude Code's Bash tool, Claude Code runs it
// (allowed by --allowedTools) and sends the tool_result back with the thinking block (display
// "omitted": its signature only, which the server opens back into the prompt), the model answers.
// What Claude Code sends that a plain Messages client does not (system messages between turns,
// thinking display, output_config, context_management, deferred tools, ?beta=true) is checked in
// its real request bodies. Then against synthetic:tiny (random weights): exit 0, text printed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../src/server/app.js';
import { loadModelTokenizer, type HarmonyTokenizer } from '../../src/tokenizer/index.js';
import { runClaude } from './claude-code.js';
import { CURRENT_DATE, MODEL } from './helpers.js';
import { ScriptedEngine } from './scripted-engine.js';

const REASONING = 'The user wants a command run. I will call Bash.';
const ANSWER = 'The command printed claude-tool-ok.';
const KEY = 'sk-claude-code-test';

type Body = Record<string, any>;

describe('Claude Code CLI', () => {
  let tokenizer: HarmonyTokenizer;
  beforeAll(async () => {
    tokenizer = await loadModelTokenizer();
  });

  describe('tool loop against the scripted engine', () => {
    const requests: Array<{ url: string; headers: Record<string, unknown>; body: Body }> = [];
    let engine: ScriptedEngine;
    let app: ReturnType<typeof createServer>;
    let root: string;
    beforeAll(async () => {
      engine = new ScriptedEngine((prompt) => {
        const text = tokenizer.decode([...prompt]);
        const answered = text.includes('<|start|>functions.Bash to=assistant');
        return tokenizer.encodeWithSpecialTokens(
          answered
            ? `<|channel|>analysis<|message|>The tool answered.<|end|><|start|>assistant<|channel|>final<|message|>${ANSWER}<|return|>`
            : `<|channel|>analysis<|message|>${REASONING}<|end|><|start|>assistant<|channel|>commentary to=functions.Bash <|constrain|>json<|message|>{"command":"echo claude-tool-ok","description":"Print a word"}<|call|>`,
        );
      });
      // --strict-params: every field Claude Code sends is one the server knows
      app = createServer({ models: [{ name: 'gpt-oss-20b', engine, tokenizer }], currentDate: CURRENT_DATE, logger: false, apiKey: KEY, strictParams: true });
      app.addHook('preValidation', async (request) => {
        if (request.method === 'POST' && request.url.startsWith('/v1/messages')) requests.push({ url: request.url, headers: { ...request.headers }, body: structuredClone(request.body) as Body });
      });
      root = await app.listen({ host: '127.0.0.1', port: 0 });
    });
    afterAll(async () => {
      await app?.close();
    });

    it('runs Bash, sends the result back with the signed thinking, prints the answer', async () => {
      const run = await runClaude(root, 'gpt-oss-20b', ['--allowedTools', 'Bash(echo claude-tool-ok)', '--', 'Run `echo claude-tool-ok` and tell me what it printed.'], 150_000);
      expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(run.stdout).toContain(ANSWER);
      const turns = requests.filter((r) => r.url.startsWith('/v1/messages?') || r.url === '/v1/messages');
      expect(turns.length).toBeGreaterThanOrEqual(2);
      const [first, second] = turns as [(typeof turns)[0], (typeof turns)[0]];

      // What Claude Code sends on every turn.
      expect(first.url).toBe('/v1/messages?beta=true');
      expect(first.headers['x-api-key']).toBe(KEY);
      expect(String(first.headers['anthropic-beta'])).toContain('claude-code-');
      expect(first.body).toMatchObject({ stream: true, thinking: { type: 'adaptive', display: 'omitted' }, output_config: { effort: expect.any(String) } });
      expect(first.body['context_management']).toEqual(expect.any(Object));
      expect(first.body['metadata']).toEqual({ user_id: expect.any(String) });
      expect(first.body['messages'].map((m: Body) => m['role'])).toContain('system');
      expect(first.body['tools'].map((t: Body) => t['name'])).toContain('Bash');

      // The second turn: the thinking block (no text, the server's signature), the call, its real output.
      const assistant = (second.body['messages'] as Body[]).find((m) => m['role'] === 'assistant')!;
      const thinking = (assistant['content'] as Body[]).find((b) => b['type'] === 'thinking')!;
      expect(thinking['thinking']).toBe('');
      expect(app.gptOss.reasoningSeal.open(thinking['signature'])).toBe(REASONING);
      const call = (assistant['content'] as Body[]).find((b) => b['type'] === 'tool_use')!;
      expect(call).toMatchObject({ name: 'Bash', input: { command: 'echo claude-tool-ok' } });
      const results = (second.body['messages'] as Body[]).flatMap((m) => (m['role'] === 'user' && Array.isArray(m['content']) ? m['content'] : [])).filter((b: Body) => b['type'] === 'tool_result');
      expect(results.map((b: Body) => b['tool_use_id'])).toContain(call['id']);
      expect(JSON.stringify(results)).toContain('claude-tool-ok');

      // The reasoning came back into the prompt before the call, as harmony's tool loop wants.
      const prompt = tokenizer.decode(engine.prompts[1]!);
      expect(prompt).toContain(`<|channel|>analysis<|message|>${REASONING}<|end|><|start|>assistant to=functions.Bash<|channel|>commentary`);
      // deferred tools stay out of the prompt; the mid-conversation system message stays in it
      const deferred = (first.body['tools'] as Body[]).filter((t) => t['defer_loading'] === true).map((t) => t['name'] as string);
      for (const name of deferred) expect(tokenizer.decode(engine.prompts[0]!)).not.toContain(`type ${name} =`);
      expect(tokenizer.decode(engine.prompts[0]!)).toMatch(/<\|start\|>system<\|message\|># Environment/);
    }, 180_000);
  });

  describe('against synthetic:tiny', () => {
    let app: ReturnType<typeof createServer>;
    let root: string;
    beforeAll(async () => {
      app = createServer({ models: [{ spec: MODEL }], context: 32768, currentDate: CURRENT_DATE, logger: false });
      root = await app.listen({ host: '127.0.0.1', port: 0 });
      const host = app.gptOss.models.all[0]!.host;
      await host.loaded;
      if (host.error) throw host.error;
    }, 120_000);
    afterAll(async () => {
      await app?.close();
    });

    it('completes a turn: exit 0, the model text printed', async () => {
      const run = await runClaude(root, MODEL, ['Say hello'], 400_000);
      expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(run.stdout.trim().length).toBeGreaterThan(0);
      expect(app.gptOss.lastGeneration).not.toBeNull();
    }, 450_000);
  });
});
