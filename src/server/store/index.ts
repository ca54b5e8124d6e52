// Picks the Responses store: in memory (default), or Redis for `redis://` and `rediss://` URLs.
import { MemoryResponseStore } from './memory.js';
import { RedisResponseStore, type RedisStoreOptions } from './redis.js';
import type { ResponseStore } from './types.js';

export { MemoryResponseStore } from './memory.js';
export { RedisResponseStore, redactUrl, type RedisStoreOptions } from './redis.js';
export * from './types.js';

/** `memory` (or nothing) or a Redis URL; throws, naming the URL, when Redis cannot be reached. */
export async function openResponseStore(spec: string | undefined, opts: RedisStoreOptions = {}): Promise<ResponseStore> {
  if (spec === undefined || spec === '' || spec === 'memory') return new MemoryResponseStore(opts);
  return RedisResponseStore.open(spec, opts);
}
