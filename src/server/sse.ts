// Server-sent events on a hijacked fastify reply: `data: {json}` lines (Chat Completions,
// Completions) or `event: name` + `data:` pairs (Responses). Writes after the client left are
// dropped. The route counts the request in the metrics itself, since fastify's onResponse hook
// does not run for a hijacked reply.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from './context.js';
import { shuttingDown, toApiError, type ErrorBody } from './errors.js';

/** Default gap after which an idle stream gets a `: keep-alive` comment. */
export const SSE_KEEPALIVE_MS = 15_000;

export class SseStream {
  private ended = false;
  private lastWrite = performance.now();
  private readonly keepAlive: ReturnType<typeof setInterval>;

  constructor(
    private readonly ctx: ServerContext,
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
  ) {
    reply.hijack();
    // Headers the hooks set on the reply (CORS) go out with the stream's own.
    reply.raw.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      // No `connection` header: Node's own (keep-alive, or close when the request asked for it
      // with `Connection: close`) decides whether the socket stays open after the stream.
      'x-accel-buffering': 'no',
      'x-request-id': String(request.id),
    });
    // Headers out now: the client knows it was accepted even while it waits in the queue.
    reply.raw.flushHeaders();
    // While the request waits in the queue or its prompt is read nothing else is written: a
    // comment line (which every SSE client skips) keeps proxies with idle timeouts from cutting it.
    const every = ctx.sseKeepAliveMs ?? SSE_KEEPALIVE_MS;
    this.keepAlive = setInterval(() => {
      if (performance.now() - this.lastWrite >= every - 5) this.write(': keep-alive\n\n');
    }, every);
    this.keepAlive.unref();
    reply.raw.once('close', () => clearInterval(this.keepAlive));
  }

  /** The client is gone or the stream was ended. */
  get closed(): boolean {
    const res = this.reply.raw;
    return this.ended || res.destroyed || res.writableEnded;
  }

  data(payload: unknown): void {
    this.write(`data: ${JSON.stringify(payload)}\n\n`);
  }

  event(name: string, payload: unknown): void {
    this.write(`event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`);
  }

  private write(text: string): void {
    if (this.closed) return;
    this.lastWrite = performance.now();
    this.reply.raw.write(text);
  }

  /** Ends the stream (with `data: [DONE]` where the API has it) and counts the request. */
  end(doneMarker: boolean): void {
    if (this.ended) return;
    clearInterval(this.keepAlive);
    if (doneMarker) this.write('data: [DONE]\n\n');
    const clientLeft = this.closed;
    this.ended = true;
    if (!this.reply.raw.writableEnded) this.reply.raw.end();
    const route = this.request.routeOptions.url ?? 'unmatched';
    // 499: nginx's "client closed request", so aborted streams show apart from completed ones.
    const status = clientLeft ? '499' : '200';
    this.ctx.metrics.requests.inc({ route, method: this.request.method, status });
    this.request.sseCounted = true;
    this.request.log.info({ statusCode: Number(status), responseTime: Math.round(this.reply.elapsedTime) }, 'stream completed');
  }
}

/**
 * A stream that cannot finish normally. The client left: just end it. Otherwise (the engine
 * failed, the server is closing) an `error` payload goes into the stream, which the SDKs raise,
 * then the end.
 */
export function streamFailed(
  ctx: ServerContext,
  request: FastifyRequest,
  sse: SseStream,
  signal: AbortSignal,
  e: unknown,
  send: (body: ErrorBody) => void = (b) => sse.data(b),
  doneMarker = true,
): void {
  if (signal.aborted) ctx.metrics.finished.inc({ reason: 'abort' });
  if (sse.closed) {
    sse.end(false);
    return;
  }
  const err = ctx.shutdownSignal.aborted ? shuttingDown() : toApiError(e);
  if (err.status >= 500 && !ctx.shutdownSignal.aborted) request.log.error({ err: e }, 'stream failed');
  send(err.toJSON());
  sse.end(doneMarker);
}
