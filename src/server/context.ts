// What the routes share: the models (each maybe still loading, each with its queue), the routing
// rule, the metrics and usage counters, the Responses store, the request limits.
import type { PromptOptions } from '../harmony/index.js';
import type { ConstraintSettings } from './constraints.js';
import { modelNotFound } from './errors.js';
import type { ServerMetrics } from './metrics.js';
import type { ModelHost } from './model-host.js';
import { findModel, servedIds, type ServedModel } from './models.js';
import type { ResponseStore } from './store/index.js';
import type { RoutingConfig } from './routing.js';
import type { GenerationScheduler } from './scheduler.js';
import type { UsageLedger } from './usage.js';

export interface ServerContext {
  /** In the order given; the first serves requests that name no model. */
  models: readonly ServedModel[];
  /** `model: "auto"` (or the configured name); null with a single model. */
  routing: RoutingConfig | null;
  metrics: ServerMetrics;
  usage: UsageLedger;
  store: ResponseStore;
  /** The first model's host, queue, name and KV positions in use (single-model embedders, tests). */
  readonly host: ModelHost;
  readonly scheduler: GenerationScheduler;
  readonly servedModelName: string;
  readonly kvInUse: number;
  /** Unix seconds the server started, for /v1/models `created`. */
  created: number;
  promptOptions: PromptOptions;
  /** Structured output (response formats, forced tool calls): the reasoning cap and JSON bounds. */
  constraints: ConstraintSettings;
  /** What one request may take from the engine. */
  limits: RequestLimits;
  /** Shutting down (SIGTERM): /health and new requests answer 503; those in flight may finish. */
  draining: boolean;
  /** Fires when the server closes: running and queued generations stop. */
  shutdownSignal: AbortSignal;
  /** The last finished generation (tests and logs look at it). */
  lastGeneration: { finishReason: string; tokens: number; maxTokens: number; prefillMs: number; decodeMs: number; maskMs?: number; masks?: number } | null;
}

export interface RequestLimits {
  /** Output tokens of a request that sets no max_tokens (it never gets more than the context left). */
  maxTokensDefault: number;
  /** Largest prompt a request may send; null: the context is the only bound. */
  maxPromptTokens: number | null;
}

/** Checks the request's `model` early (absent: the first model); a 404 lists what is served. */
export function checkModel(ctx: ServerContext, model: unknown): void {
  if (model === undefined || model === null) return;
  if (typeof model === 'string' && (findModel(ctx, model) || model === ctx.routing?.name)) return;
  throw modelNotFound(String(model), servedIds(ctx));
}
