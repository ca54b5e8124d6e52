// The OpenAI-compatible HTTP server: a fastify instance with the routes, auth (named API keys,
// an admin key), request ids, OpenAI-shaped errors, metrics, usage accounting, and one queue in
// front of each model's engine. A model either comes ready-made (tests, embedding) or is loaded
// in the background from a spec while the server already answers (/health says 503 until every
// model is ready). With several models, `model: "auto"` picks one per request (routing.ts).
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
import { checkPlansFit, formatBytes } from './gpu-memory.js';
import { ServerMetrics } from './metrics.js';
import { loadModel, planModel } from './model-loader.js';
import { ModelHost, type DeviceLostPolicy, type ReadyModel, type ServingEngine } from './model-host.js';
import type { ServedModel } from './models.js';
import { checkDepth } from './request-checks.js';
import { MemoryResponseStore, type ResponseStore } from './store/index.js';
import { openAiClientErrorHandler } from './client-errors.js';
import { testHookRoutes } from './routes/test-hooks.js';
import { defaultRouting, type RoutingConfig } from './routing.js';
import { GenerationScheduler } from './scheduler.js';
import { ANONYMOUS, matchApiKey, UsageLedger, type ApiKey, type PriceTable } from './usage.js';
import { adminRoutes } from './routes/admin.js';
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
  interface FastifyRequest {
    /** The name of the API key the request came with (usage is counted under it). */
    gptOssKey: string;
  }
}

/** One model of a server: a spec to load, or a loaded engine. */
export interface ModelOptions {
  /** The id clients use. Default: the spec (a folder's base name), else "gpt-oss". */
  name?: string;
  /** A folder, a hub id or synthetic:NAME, loaded in the background. */
  spec?: string;
  /** Or a loaded engine to serve (with `tokenizer`; the generated o200k_harmony one by default). */
  engine?: ServingEngine;
  tokenizer?: HarmonyTokenizer;
  /** Destroy `engine` when the server closes. Default false (the caller owns what it passes). */
  ownsEngine?: boolean;
  /** KV-cache positions when loading from spec (default: ServerOptions.context, else the model's maximum). */
  context?: number;
}


export interface ServerOptions {
  /** Several models (the first serves requests that name none). Else the one described by the fields below. */
  models?: ModelOptions[];
  /** With several models: the `auto` rule. Default: defaultRouting(first model, second model). */
  routing?: RoutingConfig;
  /** GPU memory in bytes: every model to load is planned against it before any loads. */
  gpuMemory?: number;
  /** A loaded engine to serve (with `tokenizer`; the generated o200k_harmony one by default). */
  engine?: ServingEngine;
  tokenizer?: HarmonyTokenizer;
  /** Destroy `engine` when the server closes. Default false (the caller owns what it passes). */
  ownsEngine?: boolean;
  /** Else: a folder, a hub id or synthetic:NAME, loaded in the background. */
  modelSpec?: string;
  /** KV-cache positions when loading from modelSpec (default: the model's maximum). */
  context?: number;
  /** Sequences each loaded engine runs at once (continuous batching). Default 16. */
  maxNumSeqs?: number;
  /** Tokens per engine step (the prefill chunk). Default 2048. */
  maxBatchTokens?: number;
  /** Bytes for each loaded engine's KV cache (default: the engine's). */
  kvMemory?: number;
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
  /** The model id clients see. Default: the spec (a folder's base name), else "gpt-oss". */
  servedModelName?: string;
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

/** The id of a model given without a name: the hub id or synthetic name, a folder's base name. */
export function defaultModelName(spec: string | undefined): string {
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
  const entries: ModelOptions[] = opts.models ?? [
    { name: opts.servedModelName, spec: opts.modelSpec, engine: opts.engine, tokenizer: opts.tokenizer, ownsEngine: opts.ownsEngine },
  ];
  if (entries.length === 0) throw new Error('createServer needs at least one model');
  for (const e of entries) if (!e.engine === !e.spec) throw new Error('each model needs either an engine or a spec');
  const names = entries.map((e) => e.name ?? defaultModelName(e.spec));
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new Error(`two models are named "${dup}"; give them names (NAME=SOURCE)`);
  const routing = entries.length > 1 ? (opts.routing ?? defaultRouting(names[0]!, names[1]!)) : null;
  if (opts.routing && !routing) throw new Error('routing needs at least two models');
  if (routing && (!names.includes(routing.small) || !names.includes(routing.large) || names.includes(routing.name))) {
    throw new Error(`routing: small "${routing.small}" and large "${routing.large}" must be served models, and "${routing.name}" none of them`);
  }
  const keys: ApiKey[] = [...(opts.apiKey !== undefined ? [{ name: 'default', key: opts.apiKey }] : []), ...(opts.apiKeys ?? [])];
  if (new Set(keys.map((k) => k.name)).size !== keys.length) throw new Error('two API keys have the same name');
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
    // Errors Node's HTTP parser raises before there is a request (bad framing, huge headers,
    // slow headers): OpenAI-shaped too.
    clientErrorHandler: openAiClientErrorHandler,
    // fastify's default (0) lets a body that stalls hold its connection for ever.
    requestTimeout: opts.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT_MS,
    ...(opts.headersTimeout !== undefined
      ? { http: { headersTimeout: opts.headersTimeout, connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(opts.headersTimeout / 4))) } }
      : {}),
  } as FastifyServerOptions;
  const app = (
    isLoggerInstance(opts.logger) ? Fastify({ ...base, loggerInstance: opts.logger }) : Fastify({ ...base, logger: opts.logger ?? false })
  ) as unknown as FastifyInstance;

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
  // Models loaded from specs are planned first, all of them, when the GPU's size is known: what
  // does not fit is refused before anything loads. Then they load one at a time, in order.
  const batching = { maxNumSeqs: opts.maxNumSeqs ?? DEFAULT_MAX_NUM_SEQS, maxBatchTokens: opts.maxBatchTokens ?? DEFAULT_MAX_BATCH_TOKENS, kvMemory: opts.kvMemory };
  const toLoad = entries.flatMap((e, i) => (e.spec && !e.engine ? [{ name: names[i]!, spec: e.spec, context: e.context ?? opts.context }] : []));
  const budget = opts.gpuMemory;
  const planned: Promise<void> =
    budget === undefined || toLoad.length === 0
      ? Promise.resolve()
      : (async () => {
          const plans = [];
          for (const m of toLoad) plans.push({ ...m, plan: await planModel(m.spec, { context: m.context, ...batching, onDownloadProgress: opts.onDownloadProgress }) });
          checkPlansFit(plans, budget);
          const total = plans.reduce((n, p) => n + p.plan.total, 0);
          app.log.info({ models: plans.map((p) => ({ name: p.name, bytes: p.plan.total })) }, `memory plan: ${formatBytes(total)} of ${formatBytes(budget)}`);
        })();
  let previous: Promise<unknown> = Promise.resolve();
  const loadSpec = (spec: string, context: number | undefined) =>
    loadModel(spec, { context: context ?? opts.context, ...batching, onDownloadProgress: opts.onDownloadProgress, log: (m) => app.log.info(m) }).then(warm);
  const models: ServedModel[] = entries.map((e, i) => {
    let load: Promise<ReadyModel & { dispose?: () => void }>;
    if (e.engine) {
      const engine = e.engine;
      load = Promise.resolve(e.tokenizer ?? loadModelTokenizer()).then((tokenizer) =>
        warm({ engine, tokenizer, dispose: e.ownsEngine ? () => engine.destroy() : undefined }),
      );
    } else {
      const spec = e.spec!;
      load = Promise.all([planned, previous]).then(() => loadSpec(spec, e.context));
      previous = load.catch(() => {});
    }
    const host = new ModelHost(load, {
      onDeviceLost: opts.onDeviceLost ?? 'reload',
      // A model loaded from a spec comes back on a new device; an engine handed in cannot.
      ...(e.spec && !e.engine ? { reload: () => loadSpec(e.spec!, e.context) } : {}),
      log: (level, msg) => app.log[level]({ model: names[i] }, msg),
    });
    host.loaded.then(() => {
      if (host.status === 'ready') app.log.info({ model: names[i], context: host.engine?.contextLength }, 'model ready');
      else app.log.error({ model: names[i], err: host.error }, 'model failed to load');
    }, () => {});
    // as many on the engine at once as it batches; an engine handed in brings its own number
    const scheduler = new GenerationScheduler(opts.maxQueue ?? DEFAULT_MAX_QUEUE, e.engine ? (e.engine.maxNumSeqs ?? 1) : batching.maxNumSeqs);
    host.onReady((engine) => {
      if ('onStep' in engine) engine.onStep = (st) => metrics.batchSize.observe(st.sequences);
    });
    return { name: names[i]!, spec: e.spec ?? null, host, scheduler, kvInUse: 0 };
  });
  const promptOptions: PromptOptions = opts.currentDate !== undefined ? { currentDate: opts.currentDate } : {};
  const shutdown = new AbortController();
  // Every in-flight request listens for shutdown: more than Node's default of 10 is expected.
  setMaxListeners(0, shutdown.signal);
  const usage = new UsageLedger(opts.prices ?? new Map());
  // The gauges read live state at scrape time.
  const metrics = new ServerMetrics(
    () =>
      models.map((m) => ({
        name: m.name,
        queueDepth: m.scheduler.queueDepth,
        running: m.scheduler.running,
        kvInUse: m.kvInUse,
        batching: m.host.engine?.batching?.() ?? null,
        context: m.host.engine?.contextLength ?? 0,
        ready: m.host.status === 'ready',
      })),
    usage.metrics,
  );
  const first = models[0]!;
  const ctx: ServerContext = {
    models,
    routing,
    metrics,
    usage,
    store: opts.responseStore ?? new MemoryResponseStore({ maxEntries: opts.responseStoreSize }),
    host: first.host,
    scheduler: first.scheduler,
    servedModelName: first.name,
    get kvInUse() {
      return first.kvInUse;
    },
    created: Math.floor(Date.now() / 1000),
    promptOptions,
    constraints,
    limits: { maxTokensDefault: opts.maxTokensDefault ?? DEFAULT_MAX_TOKENS, maxPromptTokens: opts.maxPromptTokens ?? null },
    draining: false,
    lastGeneration: null,
    shutdownSignal: shutdown.signal,
  };
  app.decorate('gptOss', ctx);
  app.decorateRequest('gptOssKey', ANONYMOUS);

  let inFlight = 0;
  app.addHook('onRequest', async (request, reply) => {
    inFlight++;
    reply.raw.once('close', () => inFlight--);
    reply.header('x-request-id', request.id);
    const path = request.url.split('?')[0];
    // /health answers the shutdown itself (503 with its status field).
    const health = path === '/health';
    if ((ctx.draining || shutdown.signal.aborted) && !health) throw shuttingDown();
    if (health) return;
    const auth = request.headers.authorization;
    const bearer = auth ? (/^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1] ?? null) : null;
    const isAdmin = opts.adminKey !== undefined && bearer !== null && sameSecret(bearer, opts.adminKey);
    if (path?.startsWith('/admin/')) {
      if (opts.adminKey === undefined) throw new ApiError(403, 'The admin endpoints are off: start the server with --admin-key.', 'invalid_request_error', null, 'admin_disabled');
      if (!isAdmin) throw unauthorized('Incorrect admin key provided.');
      return;
    }
    if (keys.length === 0) return;
    if (!auth) {
      throw unauthorized(
        "You didn't provide an API key. Provide it in an Authorization header using Bearer auth (Authorization: Bearer YOUR_KEY).",
      );
    }
    const key = bearer === null ? null : matchApiKey(keys, bearer);
    if (key) request.gptOssKey = key.name;
    // Prometheus may scrape with the admin key.
    else if (!(isAdmin && path === '/metrics')) throw unauthorized('Incorrect API key provided.');
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
  adminRoutes(app, ctx);
  if (opts.testHooks) testHookRoutes(app, ctx);

  // Closing: refuse new work, fail the queue, stop the running generation (within one prefill
  // chunk or decode step), then free the model once the engine is idle. closeGracefully (SIGTERM)
  // gives requests in flight their grace period first.
  app.addHook('preClose', async () => {
    for (const m of models) m.scheduler.close();
    shutdown.abort(new DOMException('the server is shutting down', 'AbortError'));
    // Let the cancelled requests write their last bytes before the connections are destroyed.
    await Promise.all(models.map((m) => m.scheduler.whenIdle()));
    for (let waited = 0; inFlight > 0 && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
  });
  app.addHook('onClose', async () => {
    await Promise.all(models.map((m) => m.scheduler.whenIdle()));
    // A load still running is not waited for: the host frees the model when it arrives.
    for (const m of models) m.host.close();
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
  const idle = Promise.all(ctx.models.map((m) => m.scheduler.whenIdle()));
  await Promise.race([idle, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
  clearTimeout(timer);
  await app.close();
}
