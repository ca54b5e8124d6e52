// The chat page at GET / in a real browser: headless Chromium driven by puppeteer-core against
// the real server on loopback, with an API key. Served: synthetic:tiny twice (small, large, and
// `auto` between them) and a paced stand-in engine ("scripted") whose answers random weights
// cannot write: reasoning, Markdown with a code block, HTML, a long answer to stop. Screenshots
// (light, dark, phone) go to test-output/ui/.
import { mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createServer } from '../../src/server/app.js';
import { loadModel, type LoadedModel } from '../../src/server/model-loader.js';
import { UI_CSP } from '../../src/server/routes/ui.js';
import type { HarmonyTokenizer } from '../../src/tokenizer/index.js';
import { REPO_ROOT } from '../server/helpers.js';
import { PacedScriptedEngine } from './scripted-engine.js';

// The callbacks given to page.evaluate run in the page; this file is type-checked without the
// DOM library, so what they use is declared here, loosely.
declare const document: any;
declare const window: any;
declare const localStorage: any;
declare const getComputedStyle: any;
declare const MutationObserver: any;
type El = any;

const KEY = 'sk-chat-page-0123';
const OUT = path.join(REPO_ROOT, 'test-output', 'ui');
const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';

const HTML_ANSWER =
  '<|channel|>analysis<|message|>The user sent <b>markup</b>; answer with a code block.<|end|>' +
  '<|start|>assistant<|channel|>final<|message|>Here is **bold** text and a block:\n\n```js\nconst tag = "<script>alert(1)</script>";\n```\n\n' +
  '<img src=x onerror="window.__pwned=3"> <b>not bold</b><|return|>';
const LONG_ANSWER = '<|channel|>final<|message|>' + 'Once upon a time there was a story that went on. '.repeat(400) + '<|return|>';

let tiny: LoadedModel;
let tokenizer: HarmonyTokenizer;
let scripted: PacedScriptedEngine;
let app: FastifyInstance;
let base: string;
let browser: Browser;
let page: Page;
let profile: string;
/** Console errors and page errors; the resource errors a test expects are taken out by it. */
const errors: string[] = [];

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  tiny = await loadModel('synthetic:tiny', { context: 2048 });
  tokenizer = tiny.tokenizer;
  const ids = (text: string) => tokenizer.encodeWithSpecialTokens(text);
  // the long answer when the last user message asks for a story
  const lastUser = (prompt: readonly number[]) => tokenizer.decode([...prompt]).split('<|start|>user<|message|>').at(-1)!;
  scripted = new PacedScriptedEngine((prompt) => (lastUser(prompt).includes('long story') ? ids(LONG_ANSWER) : ids(HTML_ANSWER)), 15);
  app = createServer({
    models: [
      { name: 'small', engine: tiny.engine, tokenizer },
      { name: 'large', engine: tiny.engine, tokenizer },
      { name: 'scripted', engine: scripted, tokenizer },
    ],
    apiKey: KEY,
    // a busy model refuses at once (429 with Retry-After) instead of queueing
    maxQueue: 0,
    currentDate: '2025-08-05',
    logger: false,
  });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
  profile = await mkdtemp(path.join(os.tmpdir(), 'gpt-oss-ui-chromium-'));
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 760 });
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  tiny?.dispose();
  if (profile) await rm(profile, { recursive: true, force: true });
});

/** Takes out the "Failed to load resource" errors of the given statuses; returns how many. */
function expectedResourceErrors(status: number): number {
  const re = new RegExp(`Failed to load resource: the server responded with a status of ${status}`);
  const n = errors.filter((e) => re.test(e)).length;
  errors.splice(0, errors.length, ...errors.filter((e) => !re.test(e)));
  return n;
}

function rawGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    // A raw path: fetch() would resolve the dot segments before sending.
    const req = http.get({ host: u.hostname, port: u.port, path: url, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

/** The text of the last element matching `selector`. */
const lastText = (selector: string) => page.$$eval(selector, (es) => es[es.length - 1]?.textContent ?? '');
const lastBody = () => lastText('#messages .msg.assistant .body');
const lastMeta = () => lastText('#messages .msg.assistant .meta');
const idle = (timeout = 120_000) => page.waitForFunction(() => document.getElementById('stop')!.hidden, { timeout });

/** Records each distinct text of the last answer's body as it changes. */
async function watchUpdates(): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __updates: string[]; __observer?: any };
    w.__observer?.disconnect();
    w.__updates = [];
    w.__observer = new MutationObserver(() => {
      const bodies = document.querySelectorAll('#messages .msg.assistant .body');
      const text = bodies[bodies.length - 1]?.textContent ?? '';
      if (text !== '' && w.__updates[w.__updates.length - 1] !== text) w.__updates.push(text);
    });
    w.__observer.observe(document.getElementById('messages')!, { subtree: true, childList: true, characterData: true });
  });
}
const updates = () => page.evaluate(() => (window as unknown as { __updates: string[] }).__updates.length);

async function send(text: string): Promise<void> {
  await page.focus('#input');
  await page.$eval('#input', (e, t) => ((e as El).value = t), text);
  await page.keyboard.press('Enter');
}

describe('the chat page', () => {
  it('GET / and its assets: content types, CSP, public without the key; nothing outside ui/; /v1 still needs the key', async () => {
    const index = await rawGet('/');
    expect(index.status).toBe(200);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(index.headers['content-security-policy']).toBe(UI_CSP);
    expect(index.headers['x-content-type-options']).toBe('nosniff');
    expect(index.body).toContain('<script type="module" src="/ui/app.js">');
    for (const [file, type] of [['/ui/app.js', 'text/javascript; charset=utf-8'], ['/ui/style.css', 'text/css; charset=utf-8'], ['/ui/vendor/marked.esm.js', 'text/javascript; charset=utf-8'], ['/ui/icon.svg', 'image/svg+xml']]) {
      const r = await rawGet(file!);
      expect(r.status, file).toBe(200);
      expect(r.headers['content-type'], file).toBe(type);
    }
    for (const p of ['/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/..%2f..%2fpackage.json', '/ui/vendor/../../src/cli.ts', '/ui/', '/ui/nope.js']) {
      const r = await rawGet(p);
      expect(r.status, p).toBe(404);
      expect(JSON.parse(r.body).error.type, p).toBe('invalid_request_error');
    }
    // outside /ui/ nothing is public
    expect((await rawGet('/package.json')).status).toBe(404);
    expect((await rawGet('/v1/models')).status).toBe(401);
    expect((await rawGet('/v1/models', { authorization: `Bearer ${KEY}` })).status).toBe(200);
    // --no-ui: no page
    const off = createServer({ models: [{ name: 'scripted', engine: scripted, tokenizer }], ui: false, logger: false });
    try {
      expect((await off.inject({ url: '/' })).statusCode).toBe(404);
    } finally {
      await off.close();
    }
  });

  it("asks for the API key with the server's 401 message, and loads the models once it is set in Settings", async () => {
    await page.goto(`${base}/`, { waitUntil: 'load' });
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.$eval('#error', (e) => e.textContent)).toMatch(/^Error 401: .*API key.* Set the API key in Settings\.$/);
    expect(expectedResourceErrors(401)).toBe(1);
    // keyboard only: Tab to Settings, open it, type the key, save with Enter
    await page.focus('#open-settings');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#settings[open]');
    await page.focus('#api_key');
    await page.keyboard.type(KEY);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('#model option').length === 4);
    const options = await page.$$eval('#model option', (os) => os.map((o) => [(o as El).value, o.textContent]));
    expect(options).toEqual([['small', 'small'], ['large', 'large'], ['scripted', 'scripted'], ['auto', 'auto (small or large)']]);
    // auto is chosen when there is one
    expect(await page.$eval('#model', (e) => (e as El).value)).toBe('auto');
    expect(await page.evaluate(() => localStorage.getItem('gpt-oss-webgpu.apiKey'))).toBe(JSON.stringify(KEY));
    expect(await page.$eval('#error', (e) => (e as El).hidden)).toBe(true);
  });

  it('synthetic:tiny through auto: the answer streams in several updates and ends with its usage line', async () => {
    await page.select('#model', 'auto');
    await watchUpdates();
    await send('Hello!');
    await idle();
    // Random weights end an answer after ~30 tokens on average, but now and then after a few,
    // and the first words wait until they cannot be a message header: regenerate (at most 8
    // times) until an answer streamed in several updates.
    for (let i = 0; i < 8 && (await updates()) < 2; i++) {
      await watchUpdates();
      await page.click('#regenerate');
      await page.waitForFunction(() => !document.getElementById('stop')!.hidden);
      await idle();
    }
    const meta = await lastMeta();
    expect(meta).toMatch(/^auto → small · \d+ tokens · TTFT \d+\.\d\d s · \d+\.\d tokens\/s · \d+ cached prompt tokens( · cut at max tokens)?$/);
    expect(await updates()).toBeGreaterThan(1);
    expect((await lastBody()).length).toBeGreaterThan(0);
    // one user message and one answer: regenerating replaced the answer
    expect(await page.$$eval('#messages .msg', (ms) => ms.map((m) => m.className))).toEqual(['msg user', 'msg assistant']);
    await page.screenshot({ path: path.join(OUT, 'answer-light.png') });
  });

  it('model output and user messages are text: reasoning streams collapsed, Markdown renders, HTML does not', async () => {
    await page.select('#model', 'scripted');
    const typed = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> **not markdown**';
    await page.evaluate(() => {
      const w = window as unknown as { __reasoning: number };
      w.__reasoning = 0;
      new MutationObserver(() => w.__reasoning++).observe(document.getElementById('messages')!, { subtree: true, characterData: true, childList: true });
    });
    await send(typed);
    // while it streams, the reasoning is there and collapsed
    await page.waitForFunction(() => ([...document.querySelectorAll('#messages .msg.assistant .reasoning .text')].at(-1)?.textContent ?? '').length > 10);
    expect(await page.$$eval('#messages .msg.assistant .reasoning', (ds) => (ds[ds.length - 1] as El).open)).toBe(false);
    await idle();
    const user = await page.$$eval('#messages .msg.user .body', (es) => ({ text: es[es.length - 1]!.textContent, children: es[es.length - 1]!.children.length }));
    expect(user.text).toBe(typed);
    expect(user.children).toBe(0);
    const answer = await page.$$eval('#messages .msg.assistant', (as) => {
      const a = as[as.length - 1]!;
      return {
      reasoning: a.querySelector('.reasoning .text')!.textContent,
      reasoningOpen: (a.querySelector('.reasoning') as El).open,
      strong: [...a.querySelectorAll('.body strong')].map((e) => e.textContent),
      code: a.querySelector('.body pre code')?.textContent,
      codeClass: a.querySelector('.body pre code')?.className,
      text: a.querySelector('.body')!.textContent,
      tags: [...a.querySelectorAll('.body *')].map((e) => e.tagName.toLowerCase()),
      };
    });
    expect(answer.reasoning).toBe('The user sent <b>markup</b>; answer with a code block.');
    expect(answer.reasoningOpen).toBe(false);
    expect(answer.strong).toEqual(['bold']);
    expect(answer.code).toBe('const tag = "<script>alert(1)</script>";\n');
    expect(answer.codeClass).toBe('language-js');
    expect(answer.text).toContain('<img src=x onerror="window.__pwned=3"> <b>not bold</b>');
    expect(answer.tags.filter((t) => !['p', 'strong', 'pre', 'code', 'br'].includes(t))).toEqual([]);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.evaluate(() => (window as unknown as { __reasoning: number }).__reasoning)).toBeGreaterThan(3);
    expect(await lastMeta()).toMatch(/^scripted · \d+ tokens · TTFT/);
    // opened with the keyboard
    await page.$$eval('#messages .msg.assistant .reasoning summary', (ss) => (ss[ss.length - 1] as El).focus());
    await page.keyboard.press('Enter');
    expect(await page.$$eval('#messages .msg.assistant .reasoning', (ds) => (ds[ds.length - 1] as El).open)).toBe(true);
    await page.screenshot({ path: path.join(OUT, 'reasoning-and-code-light.png') });
  });

  it('Escape stops a long answer: the request is aborted, the server cancels, the text stops growing', async () => {
    await send('Tell me a long story.');
    await page.waitForFunction(() => ([...document.querySelectorAll('#messages .msg.assistant .body')].at(-1)?.textContent ?? '').length > 100);
    expect(await page.$eval('#stop', (e) => (e as El).hidden)).toBe(false);
    await page.keyboard.press('Escape');
    await idle(10_000);
    for (let t0 = Date.now(); scripted.isBusy && Date.now() - t0 < 10_000; ) await new Promise((r) => setTimeout(r, 20));
    expect(scripted.last?.finishReason).toBe('abort');
    expect(scripted.last!.tokens).toBeLessThan(1000);
    const text = await lastBody();
    await new Promise((r) => setTimeout(r, 300));
    expect(await lastBody()).toBe(text);
    expect(await lastMeta()).toMatch(/stopped$/);
    expect(await page.$eval('#send', (e) => (e as El).hidden)).toBe(false);
  });

  it("a busy model's 429 shows the server's message and Retry-After", async () => {
    // Another client holds the scripted model (one sequence, no queue).
    const ac = new AbortController();
    const other = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ model: 'scripted', messages: [{ role: 'user', content: 'a long story please' }], stream: true }),
      signal: ac.signal,
    });
    const reader = other.body!.getReader();
    await reader.read();
    await send('Are you there?');
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.$eval('#error', (e) => e.textContent)).toMatch(/^Error 429: .+ \(retry after \d+ s\)$/);
    expect(expectedResourceErrors(429)).toBe(1);
    ac.abort();
    await reader.cancel().catch(() => {});
    for (let t0 = Date.now(); scripted.isBusy && Date.now() - t0 < 10_000; ) await new Promise((r) => setTimeout(r, 20));
    // the unanswered message stays; Regenerate asks again
    expect(await page.$eval('#messages .msg:last-of-type', (m) => m.className)).toBe('msg user');
    await page.click('#regenerate');
    await idle();
    expect(await lastMeta()).toMatch(/^scripted · \d+ tokens/);
    expect(await page.$eval('#error', (e) => (e as El).hidden)).toBe(true);
  });

  it('Edit last puts the last message back in the box, without its answer', async () => {
    const before = await page.$$eval('#messages .msg', (ms) => ms.length);
    await page.click('#edit');
    expect(await page.$eval('#input', (e) => (e as El).value)).toBe('Are you there?');
    expect(await page.$$eval('#messages .msg', (ms) => ms.length)).toBe(before - 2);
    await page.$eval('#input', (e) => ((e as El).value = 'Are you still there?'));
    await page.keyboard.press('Enter');
    await idle();
    expect(await lastText('#messages .msg.user .body')).toBe('Are you still there?');
    expect(await page.$$eval('#messages .msg', (ms) => ms.length)).toBe(before);
  });

  it('conversations survive a reload; New chat starts another; the list opens the first again', async () => {
    const messages = await page.$$eval('#messages .msg .body', (bs) => bs.map((b) => b.textContent));
    await page.reload({ waitUntil: 'load' });
    await page.waitForFunction(() => document.querySelectorAll('#model option').length === 4);
    expect(await page.$$eval('#messages .msg .body', (bs) => bs.map((b) => b.textContent))).toEqual(messages);
    expect(await page.$$eval('#conversations .open', (bs) => bs.map((b) => b.textContent))).toEqual(['Hello!']);
    await page.click('#new-chat');
    expect(await page.$$eval('#messages .msg', (ms) => ms.length)).toBe(0);
    await page.select('#model', 'scripted');
    await send('Second conversation');
    await idle();
    expect(await page.$$eval('#conversations .open', (bs) => bs.map((b) => b.textContent))).toEqual(['Second conversation', 'Hello!']);
    await page.click('#conversations li:nth-child(2) .open');
    expect(await page.$$eval('#messages .msg .body', (bs) => bs.map((b) => b.textContent))).toEqual(messages);
  });

  it('settings: the system prompt and sampling go into the request', async () => {
    const sent: unknown[] = [];
    const onRequest = (r: { url(): string; method(): string; postData(): string | undefined }) => {
      if (r.method() === 'POST' && r.url().endsWith('/v1/chat/completions')) sent.push(JSON.parse(r.postData()!));
    };
    page.on('request', onRequest);
    await page.click('#open-settings');
    await page.waitForSelector('#settings[open]');
    await page.$eval('#system', (e) => ((e as El).value = 'Be brief.'));
    await page.$eval('#temperature', (e) => ((e as El).value = '0.7'));
    await page.$eval('#top_p', (e) => ((e as El).value = '0.9'));
    await page.$eval('#max_tokens', (e) => ((e as El).value = '64'));
    await page.click('#settings button[value="save"]');
    await page.select('#effort', 'high');
    await page.click('#new-chat');
    await page.select('#model', 'scripted');
    await send('With settings');
    await idle();
    page.off('request', onRequest);
    expect(sent).toEqual([
      {
        model: 'scripted',
        messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'With settings' }],
        reasoning_effort: 'high',
        temperature: 0.7,
        top_p: 0.9,
        max_tokens: 64,
        stream: true,
        stream_options: { include_usage: true },
      },
    ]);
  });

  it('phone width, light and dark: everything fits; the list opens from the menu button', async () => {
    await page.click('#conversations li:nth-child(3) .open');
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: scheme }]);
      await page.setViewport({ width: 1100, height: 760 });
      await page.screenshot({ path: path.join(OUT, `desktop-${scheme}.png`) });
      await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
      // nothing wider than the screen
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      await page.screenshot({ path: path.join(OUT, `phone-${scheme}.png`) });
    }
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).toBe('rgb(23, 25, 28)');
    await page.focus('#toggle-sidebar');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.getElementById('sidebar')!.classList.contains('open'));
    await new Promise((r) => setTimeout(r, 300));
    await page.screenshot({ path: path.join(OUT, 'phone-dark-conversations.png') });
    await page.keyboard.press('Escape');
    expect(await page.$eval('#sidebar', (e) => e.classList.contains('open'))).toBe(false);
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
    await page.setViewport({ width: 1100, height: 760 });
  });

  it('no console errors but the expected 401 and 429', () => {
    expect(errors).toEqual([]);
  });
});
