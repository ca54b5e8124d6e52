// What the routes share, decorated on the fastify instance as `app.gptOss`: the models (each
// maybe still loading, each with its queue) and their routing, the metrics and usage counters,
// the Responses store, the request limits and the shutdown state.
import type { PromptOptions } from '../harmony/index.js';
import type { ConstraintSettings } from './constraints.js';
import type { ServerMetrics } from './metrics.js';
import type { ModelRegistry } from './models.js';
import type { ResponseStore } from './store/index.js';
import type { ParamSettings } from './ignored-params.js';
import type { ReasoningSeal } from './reasoning-seal.js';
import type { UsageLedger } from './usage.js';

export interface ServerContext {
  models: ModelRegistry;
  metrics: ServerMetrics;
  usage: UsageLedger;
  store: ResponseStore;
  /** Unix seconds the server started, for /v1/models `created`. */
  created: number;
  promptOptions: PromptOptions;
  /** Structured output (response formats, forced tool calls): the reasoning cap and JSON bounds. */
  constraints: ConstraintSettings;
  /** Unknown request fields: ignored (named in a header) or, strict, refused. */
  params: ParamSettings;
  /** Seals reasoning handed to stateless clients (encrypted_content, thinking signatures). */
  reasoningSeal: ReasoningSeal;
  /** Idle gap after which a stream gets a `: keep-alive` comment (default 15 s). */
  sseKeepAliveMs?: number;
  /** What one request may take from the engine. */
  limits: RequestLimits;
  /** Shutting down (SIGTERM): /health and new requests answer 503; those in flight may finish. */
  draining: boolean;
  /** Fires when the server closes: running and queued generations stop. */
  shutdownSignal: AbortSignal;
  /** Serve the chat page at GET / (--no-ui turns it off). */
  ui: boolean;
  /** The last finished generation (tests and logs look at it). */
  lastGeneration: { finishReason: string; tokens: number; maxTokens: number; prefillMs: number; decodeMs: number; maskMs?: number; masks?: number } | null;
}

export interface RequestLimits {
  /** Output tokens of a request that sets no max_tokens (it never gets more than the context left). */
  maxTokensDefault: number;
  /** Largest prompt a request may send; null: the context is the only bound. */
  maxPromptTokens: number | null;
}
