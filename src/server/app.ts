// The OpenAI-compatible HTTP server: a fastify instance whose routes are plugins in three
// encapsulated scopes (routes/index.ts: public, API key, admin; each scope's hook in auth.ts),
// reading the shared state decorated as `app.gptOss` (context.ts). Around them: request ids,
// OpenAI-shaped errors, metrics, and the close that stops generations. A model either comes
// ready-made (tests, embedding) or is loaded in the background from a spec while the server
// already answers (/health says 503 until every model is ready). With several models,
// `model: "auto"` picks one per request (routing.ts).
import type { SpeculativeChoice } from '../engine/load-model.js';
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import cors from '@fastify/cors';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { PromptOptions } from '../harmony/index.js';
import type { DownloadProgress } from '../model/hub.js';
import type { ConstraintBounds } from '../constrain/index.js';
import { adminKeyHook, apiKeyHook } from './auth.js';
import { constrainedReasoningTokens } from './constraints.js';
import type { ServerContext } from './context.js';
import { ApiError, routeNotFound, toApiError, validationError } from './errors.js';
import { ServerMetrics } from './metrics.js';
import { hostModels, type ModelOptions } from './model-loader.js';
import type { DeviceLostPolicy } from './model-host.js';
import { defaultModelName, modelGauges, ModelRegistry } from './models.js';
import { checkDepth } from './request-checks.js';
import { ReasoningSeal } from './reasoning-seal.js';
import { MemoryResponseStore, type ResponseStore } from './store/index.js';
import { openAiClientErrorHandler } from './client-errors.js';
import type { RoutingConfig } from './routing.js';
import { ANONYMOUS, apiKeyList, UsageLedger, type ApiKey, type PriceTable } from './usage.js';
import { ROUTE_PLUGINS, type RouteScope } from './routes/index.js';
import { testHookRoutes } from './routes/test-hooks.js';

export type { ModelOptions } from './model-loader.js';
export { defaultModelName } from './models.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The server's shared state (models, metrics, usage, store): routes, tests and embedders read it. */
    gptOss: ServerContext;
  }
  interface FastifyRequest {
    /** The name of the API key the request came with (usage is counted under it). */
    gptOssKey: string;
    /** Counted in the request metrics already (streams and abandoned requests count themselves). */
    sseCounted: boolean;
  }
  interface FastifyContextConfig {
    /** API scope: the admin key is accepted too (/metrics, for Prometheus). */
    adminKeyToo?: boolean;
  }
}

export interface ServerOptions {
  /** The models to serve (the first serves requests that name none). */
  models: ModelOptions[];
  /** With several models: the `auto` rule. Default: defaultRouting(first model, second model). */
  routing?: RoutingConfig;
  /** GPU memory in bytes: every model to load is planned against it before any loads. */
  gpuMemory?: number;
  /** KV-cache positions of models loaded from a spec that set none (default: the model's maximum). */
  context?: number;
  /** Sequences each loaded engine runs at once (continuous batching). Default 16. */
  maxNumSeqs?: number;
  /** Tokens per engine step (the prefill chunk). Default 2048. */
  maxBatchTokens?: number;
  /** Bytes for each loaded engine's KV cache (default: the engine's). */
  kvMemory?: number;
  /** Speculative decoding for every model loaded from a spec (default off). */
  speculative?: SpeculativeChoice;
  /** When set, every route but /health needs `Authorization: Bearer <apiKey>` (usage name "default"). */
  apiKey?: string;
  /** Named API keys (with or instead of apiKey); usage is counted per name. */
  apiKeys?: ApiKey[];
  /** Opens /admin/usage to `Authorization: Bearer <adminKey>` (and /metrics, when API keys are set). */
  adminKey?: string;
  /** $ per 1M tokens per model name, for the cost counters. */
  prices?: PriceTable;
  /** Requests that may wait for the engine; more get 429. Default 64. */
  maxQueue?: number;
  /** Output tokens of a request without max_tokens (at most the context left). Default 4096. */
  maxTokensDefault?: number;
  /** Largest prompt in tokens a request may send; more is a 400. Default: only the context bounds it. */
  maxPromptTokens?: number;
  /** A pino logger, fastify logger options, or false (default). */
  logger?: FastifyBaseLogger | FastifyServerOptions['logger'];
  /** Largest accepted request body in bytes. Default 4 MiB. */
  bodyLimit?: number;
  /** Responses kept for previous_response_id (the in-memory store). Default 1000. */
  responseStoreSize?: number;
  /** An opened Responses store (e.g. Redis, src/server/store/); the caller closes it. Default: in memory. */
  responseStore?: ResponseStore;
  /** A lost GPU device: reload the model on a new device (default), or fail so the process exits. */
  onDeviceLost?: DeviceLostPolicy;
  /** POST /test-hooks/device-lost destroys a model's GPU device (chaos tests only). Default off. */
  testHooks?: boolean;
  /** Milliseconds a client has to send its request headers (slow clients get a 408). Default Node's 60000. */
  headersTimeout?: number;
  /** Milliseconds a client has to send its whole request, body included (then 408). Default 300000. */
  requestTimeout?: number;
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
  /** The chat page at GET / (routes/ui.ts). Default true. */
  ui?: boolean;
  /** Refuse unknown request fields with a 400 (OpenAI's behaviour). Default false: ignored, named in x-gpt-oss-ignored-params. */
  strictParams?: boolean;
  /** Key sealing reasoning handed to stateless clients (64 hex digits or base64 of 32 bytes). Default: random per process. */
  reasoningKey?: string;
  /** Origins allowed to call the API from a browser (CORS); "*" for any. Default: none (no CORS headers). */
  corsOrigins?: string[];
  /** Idle gap in ms after which a stream gets a `: keep-alive` comment. Default 15000. */
  sseKeepAliveMs?: number;
}

export const DEFAULT_MAX_QUEUE = 64;
export const DEFAULT_MAX_NUM_SEQS = 16;
export const DEFAULT_MAX_BATCH_TOKENS = 2048;
export const DEFAULT_MAX_TOKENS = 4096;
export const DEFAULT_BODY_LIMIT = 4 * 1024 * 1024;
/** Node's own default, which fastify turns off. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;
/** Bytes of an oversized body read (and dropped) after its 413, so the client gets to read it. */
export const MAX_DRAIN_BYTES = 64 * 1024 * 1024;

function isLoggerInstance(l: unknown): l is FastifyBaseLogger {
  return typeof l === 'object' && l !== null && typeof (l as { child?: unknown }).child === 'function' && typeof (l as { info?: unknown }).info === 'function';
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

function fastifyInstance(opts: ServerOptions): FastifyInstance {
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
    // fastify's own 503 while closing is not OpenAI-shaped; the scopes' hooks answer instead.
    return503OnClosing: false,
    // Errors fastify raises before routing (a URL with a broken %-escape): OpenAI-shaped too.
    frameworkErrors: (error, _request, reply) => {
      const err = new ApiError(400, error.message, 'invalid_request_error', null, 'invalid_url');
      void (reply as unknown as FastifyReply).code(err.status).send(err.toJSON());
    },
    // Errors Node's HTTP parser raises before there is a request (bad framing, huge headers,
    // slow headers): OpenAI-shaped too.
    clientErrorHandler: openAiClientErrorHandler,
    // fastify's default (0) lets a body that stalls hold its connection for ever.
    requestTimeout: opts.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT_MS,
    ...(opts.headersTimeout !== undefined
      ? { http: { headersTimeout: opts.headersTimeout, connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(opts.headersTimeout / 4))) } }
      : {}),
  } as FastifyServerOptions;
  return (
    isLoggerInstance(opts.logger) ? Fastify({ ...base, loggerInstance: opts.logger }) : Fastify({ ...base, logger: opts.logger ?? false })
  ) as unknown as FastifyInstance;
}

export function createServer(opts: ServerOptions): FastifyInstance {
  const keys = apiKeyList(opts.apiKey, opts.apiKeys ?? []);
  const app = fastifyInstance(opts);
  const usage = new UsageLedger(opts.prices ?? new Map());
  // The gauges read live state at scrape time.
  const metrics: ServerMetrics = new ServerMetrics(() => models.all.map(modelGauges), usage.metrics);
  const routing = ModelRegistry.routingFor(
    opts.models.map((e) => e.name ?? defaultModelName(e.spec)),
    opts.routing,
  );
  const served = hostModels(
    opts.models,
    {
      context: opts.context,
      gpuMemory: opts.gpuMemory,
      maxQueue: opts.maxQueue ?? DEFAULT_MAX_QUEUE,
      maxNumSeqs: opts.maxNumSeqs ?? DEFAULT_MAX_NUM_SEQS,
      maxBatchTokens: opts.maxBatchTokens ?? DEFAULT_MAX_BATCH_TOKENS,
      kvMemory: opts.kvMemory,
      speculative: opts.speculative,
      onDownloadProgress: opts.onDownloadProgress,
      onDeviceLost: opts.onDeviceLost,
    },
    app.log,
    (engine) => {
      if ('onStep' in engine) engine.onStep = (st) => metrics.batchSize.observe(st.sequences);
    },
  );
  const models: ModelRegistry = new ModelRegistry(served, routing, metrics.routed);
  const promptOptions: PromptOptions = opts.currentDate !== undefined ? { currentDate: opts.currentDate } : {};
  const shutdown = new AbortController();
  // Every in-flight request listens for shutdown: more than Node's default of 10 is expected.
  setMaxListeners(0, shutdown.signal);
  const ctx: ServerContext = {
    models,
    ui: opts.ui !== false,
    metrics,
    usage,
    store: opts.responseStore ?? new MemoryResponseStore({ maxEntries: opts.responseStoreSize }),
    created: Math.floor(Date.now() / 1000),
    promptOptions,
    constraints: { maxReasoningTokens: constrainedReasoningTokens(opts.constrainedReasoningTokens), bounds: { ...opts.constraintBounds } },
    params: { strict: opts.strictParams ?? false, warned: new Set() },
    reasoningSeal: new ReasoningSeal(opts.reasoningKey),
    ...(opts.sseKeepAliveMs !== undefined ? { sseKeepAliveMs: opts.sseKeepAliveMs } : {}),
    limits: { maxTokensDefault: opts.maxTokensDefault ?? DEFAULT_MAX_TOKENS, maxPromptTokens: opts.maxPromptTokens ?? null },
    draining: false,
    lastGeneration: null,
    shutdownSignal: shutdown.signal,
  };
  app.decorate('gptOss', ctx);
  app.decorateRequest('gptOssKey', ANONYMOUS);
  app.decorateRequest('sseCounted', false);

  const corsOrigins = opts.corsOrigins?.length ? opts.corsOrigins : null;
  if (corsOrigins) {
    void app.register(cors, {
      origin: corsOrigins.includes('*') ? '*' : corsOrigins,
      methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
      exposedHeaders: ['x-request-id', 'x-gpt-oss-model', 'x-gpt-oss-ignored-params', 'retry-after'],
      maxAge: 600,
    });
  }

  // What every request gets, whatever its scope (and unmatched ones): its id back, the count of
  // requests in flight that a close waits for, a bound on how deep its JSON nests, its metric.
  let inFlight = 0;
  app.addHook('onRequest', async (request, reply) => {
    inFlight++;
    reply.raw.once('close', () => inFlight--);
    reply.header('x-request-id', request.id);
  });
  app.addHook('preValidation', async (request) => {
    if (request.body !== undefined) checkDepth(request.body);
  });
  app.addHook('onResponse', async (request, reply) => {
    if (request.sseCounted) return;
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

  const hooks: Record<RouteScope, ReturnType<typeof apiKeyHook> | null> = {
    public: null,
    api: apiKeyHook(ctx, keys, opts.adminKey),
    admin: adminKeyHook(ctx, opts.adminKey),
  };
  for (const scope of ['public', 'api', 'admin'] as const) {
    void app.register(async (scoped) => {
      const hook = hooks[scope];
      if (hook) scoped.addHook('onRequest', hook);
      for (const [s, plugin] of ROUTE_PLUGINS) if (s === scope) await scoped.register(plugin);
    });
  }
  // --test-hooks on only: no key guards them, so they are never on in production.
  if (opts.testHooks) void app.register(testHookRoutes);

  // Closing: refuse new work, fail the queue, stop the running generation (within one prefill
  // chunk or decode step), then free the model once the engine is idle. closeGracefully (SIGTERM)
  // gives requests in flight their grace period first.
  app.addHook('preClose', async () => {
    for (const m of models.all) m.queue.close();
    shutdown.abort(new DOMException('the server is shutting down', 'AbortError'));
    // Let the cancelled requests write their last bytes before the connections are destroyed.
    await Promise.all(models.all.map((m) => m.queue.whenIdle()));
    for (let waited = 0; inFlight > 0 && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
  });
  app.addHook('onClose', async () => {
    await Promise.all(models.all.map((m) => m.queue.whenIdle()));
    // A load still running is not waited for: the host frees the model when it arrives.
    for (const m of models.all) m.host.close();
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
 * shutting_down error event, waiting requests get the 503) and the server closes. `onClosing`
 * is told when the grace period is over.
 */
export async function closeGracefully(app: FastifyInstance, graceMs: number, onClosing?: () => void): Promise<void> {
  const ctx = app.gptOss;
  ctx.draining = true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const idle = Promise.all(ctx.models.all.map((m) => m.queue.whenIdle()));
  await Promise.race([idle, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
  clearTimeout(timer);
  onClosing?.();
  await app.close();
}
