// What a broken HTTP client gets, over raw sockets (node:net, loopback): a body cut short of its
// Content-Length, bad chunked encoding, a header flood, headers that arrive too slowly, bytes that
// are not HTTP at all. Each is answered in the OpenAI error shape (never fastify's
// `{"error":"Bad Request","message":"Client Error","statusCode":400}`), the connection is closed,
// and the server keeps serving: a real generation on synthetic:tiny runs during and after.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL, startServer, type TestServer } from './helpers.js';

let s: TestServer;
let port: number;
beforeAll(async () => {
  s = await startServer({ headersTimeout: 1000, requestTimeout: 3000 });
  port = Number(new URL(s.baseURL).port);
});
afterAll(async () => {
  await s?.close();
});

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  raw: string;
}

/**
 * Writes `parts` (waiting `gapMs` between them), half-closes when `end`, and reads until the
 * server closes the connection (bounded by `timeoutMs`).
 */
function rawRequest(parts: Array<string | Buffer>, o: { end?: boolean; gapMs?: number; timeoutMs?: number } = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let stopped = false;
    const timer = setTimeout(() => {
      stopped = true;
      socket.destroy();
      reject(new Error(`no answer within ${o.timeoutMs ?? 30_000} ms; read ${JSON.stringify(Buffer.concat(chunks).toString())}`));
    }, o.timeoutMs ?? 30_000);
    socket.on('data', (d: Buffer) => chunks.push(d));
    // A reset after the answer was read is fine: what matters is the answer.
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      if (stopped) return;
      const raw = Buffer.concat(chunks).toString();
      const split = raw.indexOf('\r\n\r\n');
      const head = raw.slice(0, split).split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head[0] ?? '')?.[1] ?? 0);
      const headers = Object.fromEntries(head.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      let body: unknown = raw.slice(split + 4);
      try {
        body = JSON.parse(body as string);
      } catch {
        // left as text: the expectations below then fail with it shown
      }
      resolve({ status, headers, body, raw });
    });
    void (async () => {
      for (const p of parts) {
        if (stopped || socket.destroyed) return;
        socket.write(p);
        if (o.gapMs) await new Promise((r) => setTimeout(r, o.gapMs));
      }
      if (o.end && !socket.destroyed) socket.end();
    })();
  });
}

/** The OpenAI error shape, exactly: four fields, a message, a type, a code. */
function expectOpenAiError(a: RawAnswer, status: number, code: string): void {
  expect(a.status, a.raw).toBe(status);
  expect(a.headers['content-type'], a.raw).toMatch(/^application\/json/);
  expect(Number(a.headers['content-length']), a.raw).toBe(Buffer.byteLength(JSON.stringify(a.body)));
  expect(a.body, a.raw).toEqual({ error: { message: expect.any(String), type: 'invalid_request_error', param: null, code } });
  expect(a.raw).not.toContain('"statusCode"');
}

const chat = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
const head = (lines: string[]) => `${lines.join('\r\n')}\r\n\r\n`;
const post = (extra: string[]) => ['POST /v1/chat/completions HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json', ...extra];

describe('HTTP-layer errors are OpenAI-shaped', () => {
  it('a body shorter than its Content-Length (the client half-closes): 400 incomplete_request', async () => {
    for (const missing of [1, 20, chat.length]) {
      const a = await rawRequest([head(post([`Content-Length: ${chat.length + missing}`])) + chat], { end: true });
      expectOpenAiError(a, 400, 'incomplete_request');
    }
  });

  it('bad chunked encoding: 400 invalid_chunked_encoding', async () => {
    const te = head(post(['Transfer-Encoding: chunked']));
    for (const bad of ['zz\r\nabc\r\n0\r\n\r\n', '5;' + 'x'.repeat(20_000) + '\r\nhello\r\n0\r\n\r\n', '5\r\nhello\r\n-1\r\n\r\n']) {
      const a = await rawRequest([te + bad]);
      expect(a.status, a.raw).toBe(400);
      expect((a.body as { error: { code: string } }).error.code, a.raw).toMatch(/^invalid_(chunked_encoding|http)$/);
      expectOpenAiError(a, 400, (a.body as { error: { code: string } }).error.code);
    }
    // Content-Length and Transfer-Encoding together (request smuggling's shape).
    const both = await rawRequest([head(post(['Transfer-Encoding: chunked', `Content-Length: ${chat.length}`])) + chat]);
    expect(both.status, both.raw).toBe(400);
    expectOpenAiError(both, 400, (both.body as { error: { code: string } }).error.code);
  });

  it('a chunk or a body that stalls short of its length: 408 request_timeout after the request timeout (or 400 when the client half-closes)', async () => {
    const te = head(post(['Transfer-Encoding: chunked']));
    const short = `${(chat.length + 5).toString(16)}\r\n${chat}`;
    expectOpenAiError(await rawRequest([te + short]), 408, 'request_timeout');
    expectOpenAiError(await rawRequest([te + short], { end: true }), 400, 'incomplete_request');
    expectOpenAiError(await rawRequest([head(post([`Content-Length: ${chat.length + 10}`])) + chat]), 408, 'request_timeout');
  });

  it('a header flood (2000 headers, one huge header): 431 request_header_fields_too_large', async () => {
    const many = Array.from({ length: 2000 }, (_, i) => `X-Flood-${i}: ${'a'.repeat(16)}`);
    expectOpenAiError(await rawRequest([head(['GET /v1/models HTTP/1.1', 'Host: 127.0.0.1', ...many])]), 431, 'request_header_fields_too_large');
    expectOpenAiError(await rawRequest([head(['GET /v1/models HTTP/1.1', 'Host: 127.0.0.1', `X-Big: ${'b'.repeat(64 * 1024)}`])]), 431, 'request_header_fields_too_large');
  });

  it('not HTTP at all, or a broken request line: 400 invalid_http', async () => {
    expectOpenAiError(await rawRequest(['\u0000\u0001\u0002 HELLO\r\n\r\n']), 400, 'invalid_http');
    expectOpenAiError(await rawRequest(['GET /v1/models HTTP/9.9\r\nHost: x\r\n\r\n']), 400, 'invalid_http');
    expectOpenAiError(await rawRequest(['GET /v1/models HTTP/1.1\r\nBad Header Line\r\n\r\n']), 400, 'invalid_http');
  });

  it('slow headers: 408 request_timeout once the headers timeout passes, while a generation runs on another connection', async () => {
    // One byte every 200 ms: the headers never complete within the timeout.
    const line = 'GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' + 'z'.repeat(200);
    const slow = rawRequest([...line].map((c) => c), { gapMs: 200, timeoutMs: 60_000 });
    const meanwhile = s.client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Still serving?' }], max_tokens: 3 });
    const a = await slow;
    expectOpenAiError(a, 408, 'request_timeout');
    expect((await meanwhile).usage?.completion_tokens).toBe(3);
  });

  it('errors fastify raises once it has the request stay OpenAI-shaped (broken JSON, wrong media type)', async () => {
    const bad = await rawRequest([head(post([`Content-Length: 5`, 'Connection: close'])) + '{"a":']);
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ error: { message: expect.any(String), type: 'invalid_request_error', param: null, code: 'invalid_json' } });
    const media = await rawRequest([head(['POST /v1/chat/completions HTTP/1.1', 'Host: x', 'Content-Type: application/xml', `Content-Length: ${chat.length}`, 'Connection: close']) + chat]);
    expect(media.status).toBe(415);
    expect(media.body).toMatchObject({ error: { type: 'invalid_request_error', code: 'unsupported_media_type' } });
  });

  it('after all of it the server still serves: health, a chat completion over a raw keep-alive socket', async () => {
    const ok = await rawRequest([head(post([`Content-Length: ${chat.length}`, 'Connection: close'])) + chat]);
    expect(ok.status, ok.raw).toBe(200);
    expect((ok.body as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(2);
    const health = await fetch(s.baseURL.replace('/v1', '/health'));
    expect(health.status).toBe(200);
  });
});
