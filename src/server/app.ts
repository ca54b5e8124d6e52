// The OpenAI-compatible HTTP server: a fastify instance with the routes, auth, request ids,
// OpenAI-shaped errors, metrics and the queue in front of the engine. The model either comes
// ready-made (tests, embedding) or is loaded in the background from a spec while the server
// already answers (/health says 503 until it is ready).
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { basename } from 'node:path';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { PromptOptions } from '../harmony/index.js';
import type { DownloadProgress } from '../model/hub.js';
import { loadModelTokenizer, type HarmonyTokenizer } from '../tokenizer/index.js';
import type { ConstraintBounds } from '../constrain/index.js';
import { constrainedReasoningTokens, maskVocabSize, warmConstraintIndex, type ConstraintSettings } from './constraints.js';
import type { ServerContext } from './context.js';
import { ApiError, routeNotFound, shuttingDown, toApiError, unauthorized, validationError } from './errors.js';
import { ServerMetrics } from './metrics.js';
import { loadModel } from './model-loader.js';
import { ModelHost, type ServingEngine } from './model-host.js';
import { checkDepth } from './request-checks.js';
import { ResponseStore } from './response-store.js';
import { GenerationScheduler } from './scheduler.js';
import { chatRoutes } from './routes/chat.js';
import { completionsRoutes } from './routes/completions.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { modelsRoutes } from './routes/models.js';
import { responsesRoutes } from './routes/responses.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The server's shared state (model, queue, metrics): tests and embedders look at it. */
    gptOss: ServerContext;
  }
}

export interface ServerOptions {
  /** A loaded engine to serve (with `tokenizer`; the generated o200k_harmony one by default). */
  engine?: ServingEngine;
  tokenizer?: HarmonyTokenizer;
  /** Destroy `engine` when the server closes. Default false (the caller owns what it passes). */
  ownsEngine?: boolean;
  /** Else: a folder, a hub id or synthetic:NAME, loaded in the background. */
  modelSpec?: string;
  /** KV-cache positions when loading from modelSpec (default: the model's maximum). */
  context?: number;
  /** When set, every route but /health needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Requests that may wait for the engine; more get 429. Default 64. */
  maxQueue?: number;
  /** Output tokens of a request without max_tokens (at most the context left). Default 4096. */
  maxTokensDefault?: number;
  /** Largest prompt in tokens a request may send; more is a 400. Default: only the context bounds it. */
  maxPromptTokens?: number;
  /** The model id clients see. Default: the spec (a folder's base name), else "gpt-oss". */
  servedModelName?: string;
  /** A pino logger, fastify logger options, or false (default). */
  logger?: FastifyBaseLogger | FastifyServerOptions['logger'];
  /** Largest accepted request body in bytes. Default 4 MiB. */
  bodyLimit?: number;
  /** Responses kept for previous_response_id. Default 1000. */
  responseStoreSize?: number;
  /** Pins the prompt's "Current date" (YYYY-MM-DD) or, null, leaves it out. Default: today (UTC). */
  currentDate?: string | null;
  onDownloadProgress?: (p: DownloadProgress) => void;
  /**
   * Structured output (response_format / text.format, tool_choice "required" or named): reasoning
   * tokens allowed before the forced JSON answer (0: none). Default GPT_OSS_CONSTRAINED_REASONING_TOKENS, else 1024.
   */
  constrainedReasoningTokens?: number;
  /** Bounds on forced JSON (string lengths, array items, whitespace…). Default: src/constrain's. */
  constraintBounds?: Partial<ConstraintBounds>;
}

export const DEFAULT_MAX_QUEUE = 64;
export const DEFAULT_MAX_TOKENS = 4096;
export const DEFAULT_BODY_LIMIT = 4 * 1024 * 1024;
/** Bytes of an oversized body read (and dropped) after its 413, so the client gets to read it. */
export const MAX_DRAIN_BYTES = 64 * 1024 * 1024;

function defaultModelName(spec: string | undefined): string {
  if (!spec) return 'gpt-oss';
  if (spec.startsWith('synthetic:') || /^[\w.-]+\/[\w.-]+(@[\w./-]+)?$/.test(spec)) return spec.replace(/@.*$/, '');
  return basename(spec.replace(/[\\/]+$/, '')) || spec;
}

function isLoggerInstance(l: unknown): l is FastifyBaseLogger {
  return typeof l === 'object' && l !== null && typeof (l as { child?: unknown }).child === 'function' && typeof (l as { info?: unknown }).info === 'function';
}

/** Compares secrets in constant time (hashing first makes the lengths equal). */
function sameSecret(a: string, b: string): boolean {
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

export function createServer(opts: ServerOptions): FastifyInstance {
  if (!opts.engine && !opts.modelSpec) throw new Error('createServer needs an engine or a modelSpec');
  const base: FastifyServerOptions = {
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // A client's X-Request-Id is kept (when sane) so logs line up across services.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : `req-${randomUUID()}`;
    },
    requestIdHeader: false,
    // Strict JSON types: no coercion ("5" is not 5), no silent removal of unknown fields.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, strict: false } },
    // Closing destroys every connection, idle keep-alive ones included, once preClose has let the
    // requests in flight finish (below): a shutdown never waits on a client's keep-alive.
    forceCloseConnections: true,
    // fastify's own 503 while closing is not OpenAI-shaped; the onRequest hook answers instead.
    return503OnClosing: false,
    // Errors fastify raises before routing (a URL with a broken %-escape): OpenAI-shaped too.
    frameworkErrors: (error, _request, reply) => {
      const err = new ApiError(400, error.message, 'invalid_request_error', null, 'invalid_url');
      void (reply as unknown as FastifyReply).code(err.status).send(err.toJSON());
    },
  };
  const app = (
    isLoggerInstance(opts.logger) ? Fastify({ ...base, loggerInstance: opts.logger }) : Fastify({ ...base, logger: opts.logger ?? false })
  ) as unknown as FastifyInstance;

  const servedModelName = opts.servedModelName ?? defaultModelName(opts.modelSpec);
  const constraints: ConstraintSettings = {
    maxReasoningTokens: constrainedReasoningTokens(opts.constrainedReasoningTokens),
    bounds: { ...opts.constraintBounds },
  };
  // The vocabulary index structured output needs (1-2 s) is built while loading, before /health
  // says ready, so the first constrained request does not pay for it.
  const warm = <M extends { engine: ServingEngine; tokenizer: HarmonyTokenizer }>(m: M): M => {
    const t0 = performance.now();
    try {
      warmConstraintIndex(m.tokenizer, maskVocabSize(m.engine, m.tokenizer));
      app.log.debug({ ms: Math.round(performance.now() - t0) }, 'constraint vocabulary index built');
    } catch (e) {
      app.log.warn({ err: e }, 'could not build the constraint vocabulary index; structured output will build it on first use');
    }
    return m;
  };
  const host = opts.engine
    ? new ModelHost(
        Promise.resolve(opts.tokenizer ?? loadModelTokenizer()).then((tokenizer) =>
          warm({
            engine: opts.engine!,
            tokenizer,
            dispose: opts.ownsEngine ? () => opts.engine!.destroy() : undefined,
          }),
        ),
      )
    : new ModelHost(
        loadModel(opts.modelSpec!, { context: opts.context, onDownloadProgress: opts.onDownloadProgress, log: (m) => app.log.info(m) }).then(warm),
      );
  const scheduler = new GenerationScheduler(opts.maxQueue ?? DEFAULT_MAX_QUEUE);
  const promptOptions: PromptOptions = opts.currentDate !== undefined ? { currentDate: opts.currentDate } : {};
  const shutdown = new AbortController();
  // Every in-flight request listens for shutdown: more than Node's default of 10 is expected.
  setMaxListeners(0, shutdown.signal);
  // The gauges read live state at scrape time.
  const metrics = new ServerMetrics({
    queueDepth: () => scheduler.queueDepth,
    running: () => (scheduler.busy ? 1 : 0),
    kvInUse: () => ctx.kvInUse,
    context: () => host.engine?.contextLength ?? 0,
    modelReady: () => (host.status === 'ready' ? 1 : 0),
  });
  const ctx: ServerContext = {
    host,
    scheduler,
    metrics,
    store: new ResponseStore(opts.responseStoreSize ?? 1000),
    servedModelName,
    modelNames: new Set([servedModelName, ...(opts.modelSpec ? [opts.modelSpec] : [])]),
    created: Math.floor(Date.now() / 1000),
    promptOptions,
    constraints,
    limits: { maxTokensDefault: opts.maxTokensDefault ?? DEFAULT_MAX_TOKENS, maxPromptTokens: opts.maxPromptTokens ?? null },
    draining: false,
    kvInUse: 0,
    lastGeneration: null,
    shutdownSignal: shutdown.signal,
  };
  app.decorate('gptOss', ctx);
  host.loaded.then(() => {
    if (host.status === 'ready') app.log.info({ model: servedModelName, context: host.engine?.contextLength }, 'model ready');
    else app.log.error({ err: host.error }, 'model failed to load');
  }, () => {});

  let inFlight = 0;
  app.addHook('onRequest', async (request, reply) => {
    inFlight++;
    reply.raw.once('close', () => inFlight--);
    reply.header('x-request-id', request.id);
    // /health answers the shutdown itself (503 with its status field).
    const health = request.url.split('?')[0] === '/health';
    if ((ctx.draining || shutdown.signal.aborted) && !health) throw shuttingDown();
    if (opts.apiKey === undefined || health) return;
    const auth = request.headers.authorization;
    if (!auth) {
      throw unauthorized(
        "You didn't provide an API key. Provide it in an Authorization header using Bearer auth (Authorization: Bearer YOUR_KEY).",
      );
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (!m || !sameSecret(m[1]!, opts.apiKey)) throw unauthorized('Incorrect API key provided.');
  });

  app.addHook('preValidation', async (request) => {
    if (request.body !== undefined) checkDepth(request.body);
  });

  app.addHook('onResponse', async (request, reply) => {
    if ((request as { sseCounted?: boolean }).sseCounted) return;
    ctx.metrics.requests.inc({ route: request.routeOptions.url ?? 'unmatched', method: request.method, status: String(reply.statusCode) });
  });

  app.setErrorHandler((error, request, reply) => {
    if ((error as { code?: unknown }).code === 'FST_ERR_CTP_BODY_TOO_LARGE') drainOversizedBody(request, reply);
    const err = (error as { validation?: unknown }).validation
      ? validationError((error as unknown as { validation: Parameters<typeof validationError>[0] }).validation)
      : toApiError(error);
    if (err.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ status: err.status, code: err.code, param: err.param, message: err.message }, 'request refused');
    return reply.code(err.status).headers(err.headers).send(err.toJSON());
  });

  app.setNotFoundHandler((request, reply) => {
    const err = routeNotFound(request.method, request.url);
    return reply.code(err.status).send(err.toJSON());
  });

  healthRoutes(app, ctx);
  metricsRoutes(app, ctx);
  modelsRoutes(app, ctx);
  chatRoutes(app, ctx);
  completionsRoutes(app, ctx);
  responsesRoutes(app, ctx);

  // Closing: refuse new work, fail the queue, stop the running generation (within one prefill
  // chunk or decode step), then free the model once the engine is idle. closeGracefully (SIGTERM)
  // gives requests in flight their grace period first.
  app.addHook('preClose', async () => {
    scheduler.close();
    shutdown.abort(new DOMException('the server is shutting down', 'AbortError'));
    // Let the cancelled requests write their last bytes before the connections are destroyed.
    await scheduler.whenIdle();
    for (let waited = 0; inFlight > 0 && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
  });
  app.addHook('onClose', async () => {
    await scheduler.whenIdle();
    // A load still running is not waited for: the host frees the model when it arrives.
    host.close();
  });
  return app;
}

/**
 * A body over the limit is refused before it is read, and fastify then closes the connection: a
 * close with unread data resets it, so a client still sending (Python's http.client and httpx,
 * Node's http send the whole body before reading) gets a broken pipe instead of the 413. So the
 * connection stays open and Node reads and drops the rest of the body after the answer, up to
 * MAX_DRAIN_BYTES; past that the connection is closed anyway.
 */
function drainOversizedBody(request: FastifyRequest, reply: FastifyReply): void {
  reply.removeHeader('connection');
  // Node drops the body once the answer is finished, inside its HTTP parser (no 'data' events):
  // the socket's byte count tells how much came since.
  const socket = request.raw.socket;
  const start = socket.bytesRead;
  const watch = setInterval(() => {
    if (socket.bytesRead - start > MAX_DRAIN_BYTES) socket.destroy();
  }, 50);
  const stop = () => clearInterval(watch);
  request.raw.once('end', stop);
  socket.once('close', stop);
}

/**
 * Stops the server the way SIGTERM asks to: at once /health and new requests answer 503
 * (shutting_down); requests in flight, running or queued, may finish for up to `graceMs`; then
 * what still runs is stopped (within one prefill chunk or decode step: streams end with the
 * shutting_down error event, waiting requests get the 503) and the server closes.
 */
export async function closeGracefully(app: FastifyInstance, graceMs: number): Promise<void> {
  const ctx = app.gptOss;
  ctx.draining = true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([ctx.scheduler.whenIdle(), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
  clearTimeout(timer);
  await app.close();
}
