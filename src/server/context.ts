// What the routes share: the model (maybe still loading), the queue in front of the engine, the
// metrics, the Responses store and the names the model answers to.
import type { PromptOptions } from '../harmony/index.js';
import type { ConstraintSettings } from './constraints.js';
import { modelNotFound } from './errors.js';
import type { ServerMetrics } from './metrics.js';
import type { ModelHost } from './model-host.js';
import type { ResponseStore } from './response-store.js';
import type { GenerationScheduler } from './scheduler.js';

export interface ServerContext {
  host: ModelHost;
  scheduler: GenerationScheduler;
  metrics: ServerMetrics;
  store: ResponseStore;
  /** The id /v1/models lists and responses carry. */
  servedModelName: string;
  /** Names a request's `model` may use (the served name, and the spec it was loaded from). */
  modelNames: ReadonlySet<string>;
  /** Unix seconds the model became available, for /v1/models `created`. */
  created: number;
  promptOptions: PromptOptions;
  /** Structured output (response formats, forced tool calls): the reasoning cap and JSON bounds. */
  constraints: ConstraintSettings;
  /** What one request may take from the engine. */
  limits: RequestLimits;
  /** Shutting down (SIGTERM): /health and new requests answer 503; those in flight may finish. */
  draining: boolean;
  /** KV-cache positions the running sequence holds (0 when idle). */
  kvInUse: number;
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

/** Checks the request's `model`; absent means the served model. */
export function checkModel(ctx: ServerContext, model: unknown): void {
  if (model === undefined || model === null) return;
  if (typeof model === 'string' && ctx.modelNames.has(model)) return;
  throw modelNotFound(String(model));
}
