// The real Codex CLI (0.169.0) against this server, configured only as a custom provider
// (README's config.toml; no -c overrides). First against the scripted engine, so the whole tool
// loop is known: the model calls Codex's exec_command tool, Codex runs it in its read-only
// sandbox and sends the function_call_output back with the sealed reasoning (store: false), the
// model answers. Codex's real request bodies are compared with the fixture captured from such a
// run (test/fixtures/codex-0.169.0-requests.json; UPDATE_CODEX_FIXTURE=1 rewrites it). Then
// against synthetic:tiny (random weights), where the protocol is what can be checked: exit 0 and
// the printed answer being the JSON the server forced.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../src/server/app.js';
import { loadModelTokenizer, type HarmonyTokenizer } from '../../src/tokenizer/index.js';
import { runCodex } from './codex.js';
import { CURRENT_DATE, MODEL, REPO_ROOT } from './helpers.js';
import { ScriptedEngine } from './scripted-engine.js';

const FIXTURE = path.join(REPO_ROOT, 'test', 'fixtures', 'codex-0.169.0-requests.json');
const REASONING = 'The user wants a command run. I will call exec_command.';
const ANSWER = 'The command printed codex-tool-ok.';

type Body = Record<string, any>;

/** Long strings shortened, so the fixture shows the shape of Codex's requests, not its prompt. */
function shorten(v: unknown): unknown {
  if (typeof v === 'string') return v.length > 160 ? `${v.slice(0, 120)}…[${v.length} chars]` : v;
  if (Array.isArray(v)) return v.map(shorten);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shorten(x)]));
  return v;
}

/** What a request is made of: top-level keys, input item kinds, tool kinds. */
function shape(b: Body) {
  return {
    keys: Object.keys(b).sort(),
    input: (b['input'] as Body[]).map((i) => `${i['type'] ?? 'message'}${i['role'] ? `:${i['role']}` : ''}`),
    tools: (b['tools'] as Body[]).map((t) => `${t['type']}${t['type'] === 'function' || t['type'] === 'namespace' ? `:${t['name']}` : ''}`).sort(),
  };
}

describe('Codex CLI', () => {
  let tokenizer: HarmonyTokenizer;
  beforeAll(async () => {
    tokenizer = await loadModelTokenizer();
  });

  describe('tool loop against the scripted engine', () => {
    const bodies: Body[] = [];
    let engine: ScriptedEngine;
    let app: ReturnType<typeof createServer>;
    let baseURL: string;
    beforeAll(async () => {
      engine = new ScriptedEngine((prompt) => {
        const text = tokenizer.decode([...prompt]);
        const answered = text.includes('<|start|>functions.exec_command to=assistant');
        return tokenizer.encodeWithSpecialTokens(
          answered
            ? `<|channel|>analysis<|message|>The tool answered.<|end|><|start|>assistant<|channel|>final<|message|>${ANSWER}<|return|>`
            : `<|channel|>analysis<|message|>${REASONING}<|end|><|start|>assistant<|channel|>commentary to=functions.exec_command <|constrain|>json<|message|>{"cmd":"echo codex-tool-ok"}<|call|>`,
        );
      });
      app = createServer({ models: [{ name: 'gpt-oss-20b', engine, tokenizer }], currentDate: CURRENT_DATE, logger: false });
      // The bodies as Codex sent them (this root hook runs before the route strips anything).
      app.addHook('preValidation', async (request) => {
        if (request.method === 'POST' && request.url.startsWith('/v1/responses')) bodies.push(structuredClone(request.body) as Body);
      });
      baseURL = `${await app.listen({ host: '127.0.0.1', port: 0 })}/v1`;
    });
    afterAll(async () => {
      await app?.close();
    });

    it('runs exec_command, sends the output back with the sealed reasoning, prints the answer', async () => {
      const run = await runCodex(baseURL, 'gpt-oss-20b', ['Run `echo codex-tool-ok` and tell me what it printed.'], 150_000);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain(ANSWER);
      expect(bodies.length).toBeGreaterThanOrEqual(2);
      const [first, second] = bodies as [Body, Body];

      // What Codex sends on every turn.
      expect(first).toMatchObject({ stream: true, store: false, parallel_tool_calls: true, tool_choice: 'auto', reasoning: { summary: 'auto' } });
      expect(first['include']).toContain('reasoning.encrypted_content');
      expect(typeof first['prompt_cache_key']).toBe('string');
      expect(first['client_metadata']).toEqual(expect.any(Object));
      expect(first['tools']).toContainEqual(expect.objectContaining({ type: 'web_search' }));
      expect(first['tools'].some((t: Body) => t['type'] === 'namespace' && Array.isArray(t['tools']))).toBe(true);
      expect(first['input'].map((i: Body) => i['role'])).toEqual(expect.arrayContaining(['developer', 'user']));

      // The second turn: reasoning (sealed by this server), the call, its real output.
      const items = second['input'] as Body[];
      const reasoning = items.find((i) => i['type'] === 'reasoning')!;
      expect(typeof reasoning['encrypted_content']).toBe('string');
      expect(app.gptOss.reasoningSeal.open(reasoning['encrypted_content'])).toBe(REASONING);
      const call = items.find((i) => i['type'] === 'function_call')!;
      expect(call).toMatchObject({ name: 'exec_command', arguments: '{"cmd":"echo codex-tool-ok"}' });
      const output = items.find((i) => i['type'] === 'function_call_output')!;
      expect(output['call_id']).toBe(call['call_id']);
      expect(JSON.stringify(output['output'])).toContain('codex-tool-ok');

      // The reasoning came back into the prompt before the call, as harmony's tool loop wants.
      const prompt = tokenizer.decode(engine.prompts[1]!);
      expect(prompt).toContain(`<|channel|>analysis<|message|>${REASONING}<|end|><|start|>assistant to=functions.exec_command<|channel|>commentary`);

      // The real bodies against the fixture captured from a real run.
      const captured = bodies.slice(0, 2).map(shorten);
      if (process.env['UPDATE_CODEX_FIXTURE'] === '1') writeFileSync(FIXTURE, `${JSON.stringify(captured, null, 2)}\n`);
      const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Body[];
      expect(captured.map((b) => shape(b as Body))).toEqual(fixture.map((b) => shape(b)));
    }, 180_000);
  });

  describe('against synthetic:tiny', () => {
    let app: ReturnType<typeof createServer>;
    let baseURL: string;
    beforeAll(async () => {
      // Random weights never end a message by themselves: a forced JSON answer (no reasoning
      // first) is one that ends, so the turn completes.
      app = createServer({ models: [{ spec: MODEL }], context: 12288, currentDate: CURRENT_DATE, logger: false, constrainedReasoningTokens: 0, maxTokensDefault: 64 });
      baseURL = `${await app.listen({ host: '127.0.0.1', port: 0 })}/v1`;
      const host = app.gptOss.models.all[0]!.host;
      await host.loaded;
      if (host.error) throw host.error;
    }, 120_000);
    afterAll(async () => {
      await app?.close();
    });

    it('completes a turn: exit 0, the forced answer printed', async () => {
      const schemaFile = path.join(REPO_ROOT, 'test', 'fixtures', 'codex-greeting-schema.json');
      const run = await runCodex(baseURL, MODEL, ['--output-schema', schemaFile, 'Say hello'], 400_000);
      expect(run.code, run.stderr).toBe(0);
      const printed = run.stdout.trim();
      const answer = JSON.parse(printed.slice(printed.indexOf('{'), printed.indexOf('}') + 1)) as { greeting: string };
      expect(['hello', 'hi there']).toContain(answer.greeting);
      expect(app.gptOss.lastGeneration).toMatchObject({ finishReason: 'stop' });
    }, 450_000);
  });
});
