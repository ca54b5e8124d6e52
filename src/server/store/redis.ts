// The Responses store in a Redis every replica shares (`--response-store redis://host:6379/0`):
// a conversation may continue on any replica, and survives restarts and deploys. Each response is
// one key holding its JSON, each of its items with an id one more key (for item_reference), all
// under the key prefix, with the API key's name in every key, and expiring after the TTL (30 days
// by default, as OpenAI keeps them). Redis bounds the total (maxmemory); one response over the
// byte limit is not stored, as in the memory store.
//
// Redis going away does not stop the server: commands fail at once (no offline queue) and the
// request that needed the store gets a 503 `store_unavailable`; the client reconnects by itself.
import { Redis } from 'ioredis';
import { DEFAULT_RESPONSE_TTL_SECONDS, DEFAULT_STORE_BYTES, entryBytes, itemsWithIds, StoreUnavailableError, type ResponseStore, type StoreLimits, type StoredResponse } from './types.js';

export interface RedisStoreOptions extends StoreLimits {
  /** Seconds a stored response (and its items) lives. Default 30 days. */
  ttlSeconds?: number;
  /** Prefix of every key. Default "gpt-oss:resp:". */
  keyPrefix?: string;
  /** Milliseconds a command may take before the request gets its 503. Default 5000 (2000 gave two 503s in the hour's soak on a saturated CPU). */
  commandTimeoutMs?: number;
  /** Told when the connection drops and when it is back (once each per outage). */
  log?: (level: 'warn' | 'info', msg: string) => void;
}

export const DEFAULT_KEY_PREFIX = 'gpt-oss:resp:';

/** The URL with its password hidden, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

export class RedisResponseStore implements ResponseStore {
  readonly kind = 'redis';
  readonly ttlSeconds: number;
  readonly maxBytes: number;
  private readonly prefix: string;
  private down = false;

  private constructor(
    private readonly redis: Redis,
    readonly url: string,
    opts: RedisStoreOptions,
  ) {
    this.ttlSeconds = opts.ttlSeconds ?? DEFAULT_RESPONSE_TTL_SECONDS;
    this.maxBytes = opts.maxBytes ?? DEFAULT_STORE_BYTES;
    this.prefix = opts.keyPrefix ?? DEFAULT_KEY_PREFIX;
    const log = opts.log ?? (() => {});
    redis.on('error', (e: Error) => {
      if (this.down) return;
      this.down = true;
      log('warn', `the Responses store at ${redactUrl(url)} is unreachable (${e.message}); requests that need it get 503 until it is back`);
    });
    redis.on('ready', () => {
      if (!this.down) return;
      this.down = false;
      log('info', `the Responses store at ${redactUrl(url)} is reachable again`);
    });
  }

  /** Connects; throws (naming the URL) when Redis cannot be reached, so the server does not start without it. */
  static async open(url: string, opts: RedisStoreOptions = {}): Promise<RedisResponseStore> {
    if (!/^rediss?:\/\//.test(url)) throw new Error(`the Responses store "${redactUrl(url)}" is not a redis:// or rediss:// URL`);
    const redis = new Redis(url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 3000,
      commandTimeout: opts.commandTimeoutMs ?? 5000,
      // Reconnect for ever, at most every 2 s: the store coming back needs no restart.
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    });
    // The first connection's failure is reported by connect() itself.
    const quiet = () => {};
    redis.on('error', quiet);
    try {
      await redis.connect();
      await redis.ping();
    } catch (e) {
      redis.disconnect();
      throw new Error(`cannot reach the Responses store at ${redactUrl(url)}: ${(e as Error).message}`);
    } finally {
      redis.off('error', quiet);
    }
    return new RedisResponseStore(redis, url, opts);
  }

  private key(kind: 'r' | 'i', owner: string, id: string): string {
    return `${this.prefix}${kind}:${encodeURIComponent(owner)}:${id}`;
  }

  private async run<T>(what: () => Promise<T>): Promise<T> {
    if (this.redis.status !== 'ready') throw new StoreUnavailableError(`Redis is ${this.redis.status}`);
    try {
      return await what();
    } catch (e) {
      throw new StoreUnavailableError((e as Error).message);
    }
  }

  async get(owner: string, id: string): Promise<StoredResponse | undefined> {
    const raw = await this.run(() => this.redis.get(this.key('r', owner, id)));
    return raw === null ? undefined : (JSON.parse(raw) as StoredResponse);
  }

  async item(owner: string, id: string): Promise<unknown> {
    const raw = await this.run(() => this.redis.get(this.key('i', owner, id)));
    return raw === null ? undefined : JSON.parse(raw);
  }

  async put(owner: string, value: StoredResponse): Promise<void> {
    if (entryBytes(value) > this.maxBytes) return;
    // One transaction: a response is never found without its items. An item another response
    // holds too gets the later TTL.
    const tx = this.redis.multi().set(this.key('r', owner, value.id), JSON.stringify(value), 'EX', this.ttlSeconds);
    for (const [itemId, item] of itemsWithIds(value)) tx.set(this.key('i', owner, itemId), JSON.stringify(item), 'EX', this.ttlSeconds);
    const results = await this.run(() => tx.exec());
    const failed = results?.find(([e]) => e);
    if (!results || failed) throw new StoreUnavailableError(failed?.[0]?.message ?? 'the transaction was aborted');
  }

  async check(): Promise<void> {
    await this.run(() => this.redis.ping());
  }

  async close(): Promise<void> {
    this.redis.removeAllListeners('error');
    this.redis.on('error', () => {});
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}
