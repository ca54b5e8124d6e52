// `gpt-oss-webgpu chat` as a user runs it (the built CLI in a child process): in this process
// with synthetic:tiny through piped stdin; against the real server on loopback (serving a paced
// stand-in engine whose answers are known, with reasoning and a long one to stop) through piped
// stdin plus SIGINT.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createServer } from '../../src/server/app.js';
import { loadModelTokenizer, type HarmonyTokenizer } from '../../src/tokenizer/index.js';
import { REPO_ROOT } from '../server/helpers.js';
import { PacedScriptedEngine } from '../ui/scripted-engine.js';

const BIN = path.join(REPO_ROOT, 'bin', 'gpt-oss-webgpu.js');
const SHORT = '<|channel|>analysis<|message|>Thinking it over.<|end|><|start|>assistant<|channel|>final<|message|>The answer is 4.<|return|>';
const LONG = '<|channel|>final<|message|>' + 'Once upon a time there was a story. '.repeat(500) + '<|return|>';

let tokenizer: HarmonyTokenizer;
let engine: PacedScriptedEngine;
let app: FastifyInstance;
let url: string;
/** The prompt of each request the engine ran, as text. */
const prompts: string[] = [];

beforeAll(async () => {
  tokenizer = await loadModelTokenizer();
  engine = new PacedScriptedEngine((prompt) => {
    const text = tokenizer.decode([...prompt]);
    prompts.push(text);
    const lastUser = text.split('<|start|>user<|message|>').at(-1)!;
    return tokenizer.encodeWithSpecialTokens(lastUser.includes('long story') ? LONG : SHORT);
  }, 10);
  app = createServer({ models: [{ name: 'scripted', engine, tokenizer }], logger: false });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await app?.close();
});

interface Run {
  child: ChildProcessWithoutNullStreams;
  out: () => string;
  err: () => string;
  /** stdout 'data' events so far. */
  chunks: () => number;
  until: (what: string, cond: () => boolean, ms?: number) => Promise<void>;
  exit: Promise<number | null>;
}

function start(cmd: string, args: string[]): Run {
  const child = spawn(cmd, args, { env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' }, cwd: REPO_ROOT });
  let out = '';
  let err = '';
  let chunks = 0;
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    chunks++;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const until = async (what: string, cond: () => boolean, ms = 120_000) => {
    for (const t0 = Date.now(); !cond(); ) {
      if (Date.now() - t0 > ms || child.exitCode !== null) throw new Error(`${what}: not seen; stdout ${JSON.stringify(out.slice(-400))} stderr ${JSON.stringify(err.slice(-400))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { child, out: () => out, err: () => err, chunks: () => chunks, until, exit };
}

const count = (text: string, re: RegExp) => (text.match(new RegExp(re, 'g')) ?? []).length;
/** The speed line after an answer (with the model's name from a server). */
const STATS = /\[(?:[\w.:-]+, )?\d+ tokens, [\d.]+ tokens\/s, first token [\d.]+ s\]/;

describe('gpt-oss-webgpu chat', () => {
  it('in this process with synthetic:tiny, stdin a pipe: each prompt gets an answer and its speed; /reset; /exit exits 0', async () => {
    const run = start(process.execPath, [BIN, 'chat', '--model', 'synthetic:tiny', '--context', '1024']);
    run.child.stdin.write('Hello!\n');
    await run.until('the first answer', () => count(run.err(), STATS) === 1);
    run.child.stdin.write('/reset\nWhat is two plus two?\n');
    await run.until('the second answer', () => count(run.err(), STATS) === 2);
    run.child.stdin.write('/exit\n');
    expect(await run.exit).toBe(0);
    expect(run.err()).toContain('(history cleared)');
    // one line of answer per prompt (random text; reasoning, if any, went to stderr)
    expect(run.out().split('\n').filter((l) => l !== '').length).toBeGreaterThanOrEqual(1);
    expect(run.out().endsWith('\n')).toBe(true);
  }, 300_000);

  it('--url, stdin a pipe: streamed answers, history kept until /reset, /system and /effort, SIGINT stops an answer and the next prompt works', async () => {
    prompts.length = 0;
    const run = start(process.execPath, [BIN, 'chat', '--url', url]);
    run.child.stdin.write('What is two plus two?\n');
    await run.until('the first answer', () => count(run.err(), STATS) === 1);
    expect(run.out()).toBe('The answer is 4.\n');
    // reasoning and speed beside it, on stderr
    expect(run.err()).toContain('Thinking it over.');
    run.child.stdin.write('And again?\n');
    await run.until('the second answer', () => count(run.err(), STATS) === 2);
    expect(prompts[1]).toContain('What is two plus two?');
    expect(prompts[1]).toContain('The answer is 4.');
    run.child.stdin.write('/reset\n/system Answer in one word.\n/effort high\nThird?\n');
    await run.until('the third answer', () => count(run.err(), STATS) === 3);
    expect(prompts[2]).not.toContain('two plus two');
    expect(prompts[2]).toContain('Answer in one word.');
    expect(prompts[2]).toContain('Reasoning: high');

    const before = run.chunks();
    run.child.stdin.write('Tell me a long story\n');
    await run.until('the story streaming', () => count(run.out(), /Once upon a time/) >= 5);
    expect(run.chunks() - before).toBeGreaterThan(2);
    run.child.kill('SIGINT');
    await run.until('the answer stopping', () => /\[[^\]]*stopped\]/.test(run.err()), 10_000);
    for (let t0 = Date.now(); engine.isBusy && Date.now() - t0 < 10_000; ) await new Promise((r) => setTimeout(r, 20));
    expect(engine.last?.finishReason).toBe('abort');
    expect(count(run.out(), /Once upon a time/)).toBeLessThan(500);
    // still running, and the next prompt works (its history holds the stopped part)
    run.child.stdin.write('Short one?\n');
    await run.until('the answer after the stop', () => count(run.err(), STATS) === 4);
    expect(prompts.at(-1)).toContain('Once upon a time');
    run.child.stdin.write('/exit\n');
    expect(await run.exit).toBe(0);
  }, 120_000);
});
