// What the Responses API keeps between requests (previous_response_id, item_reference inputs,
// GET /v1/responses/{id}), behind one interface: in this process (memory.ts, the default) or in a
// Redis shared by every replica (redis.ts). Every entry belongs to the API key (its name) it was
// stored under: another key finds nothing, exactly as if the id did not exist.
import { ApiError } from '../errors.js';

export interface StoredResponse {
  id: string;
  /** The whole conversation input this response answered (earlier turns included). */
  input: unknown[];
  /** The response's output items (reasoning, messages, function calls). */
  output: unknown[];
  /** The full response object, for GET /v1/responses/{id}. */
  response: Record<string, unknown>;
}

export interface ResponseStore {
  /** "memory" or "redis" (logs, /health). */
  readonly kind: string;
  /** The response `id` stored under `owner`, or undefined. Throws StoreUnavailableError. */
  get(owner: string, id: string): Promise<StoredResponse | undefined>;
  /** An input or output item of a response stored under `owner`, by the item's id. */
  item(owner: string, id: string): Promise<unknown>;
  /** Stores (or replaces) a response; one larger than the store's byte limit is not kept. */
  put(owner: string, value: StoredResponse): Promise<void>;
  /** Throws StoreUnavailableError when the store cannot be reached now. */
  check(): Promise<void>;
  close(): Promise<void>;
}

/** The size bounds both stores apply (the memory store also bounds the count). */
export interface StoreLimits {
  /** Responses kept (memory store: least recently used go first). Default 1000. */
  maxEntries?: number;
  /** Bytes of one response's input and output JSON (and, memory store, of all together). Default 256 MiB. */
  maxBytes?: number;
}

export const DEFAULT_STORE_ENTRIES = 1000;
export const DEFAULT_STORE_BYTES = 256 * 1024 * 1024;
/** OpenAI keeps stored responses for 30 days. */
export const DEFAULT_RESPONSE_TTL_SECONDS = 30 * 24 * 3600;

/** The store could not be reached; the request gets a 503 `store_unavailable`. */
export class StoreUnavailableError extends ApiError {
  constructor(why: string) {
    super(503, `The Responses store is unavailable (${why}); retry shortly, or send the request with store: false and without previous_response_id.`, 'server_error', null, 'store_unavailable', { 'retry-after': '2' });
  }
}

/** JSON size is a fair estimate of what an entry holds (its strings dominate). */
export function entryBytes(value: StoredResponse): number {
  return JSON.stringify(value.input).length + JSON.stringify(value.output).length;
}

/** The input and output items of a response that have an id. */
export function itemsWithIds(r: Pick<StoredResponse, 'input' | 'output'>): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const item of [...r.input, ...r.output]) {
    const id = (item as { id?: unknown } | null)?.id;
    if (typeof id === 'string') out.push([id, item]);
  }
  return out;
}
