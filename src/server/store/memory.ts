// The Responses store in this process (the default): bounded, the least recently used entry goes
// first when the count or the total size passes its limit (its items go with it, unless a newer
// entry of the same owner holds them). Lost on restart and not shared between replicas.
import { DEFAULT_STORE_BYTES, DEFAULT_STORE_ENTRIES, entryBytes, itemsWithIds, type ResponseStore, type StoreLimits, type StoredResponse } from './types.js';

/** Owner and id in one map key (an API key name never holds a NUL). */
const keyOf = (owner: string, id: string) => `${owner}\u0000${id}`;

export class MemoryResponseStore implements ResponseStore {
  readonly kind = 'memory';
  private readonly entries = new Map<string, { owner: string; value: StoredResponse; bytes: number }>();
  /** Input and output items with an id, by owner and id, with the number of stored responses holding them. */
  private readonly items = new Map<string, { item: unknown; refs: number }>();
  private bytes = 0;
  readonly maxEntries: number;
  readonly maxBytes: number;

  constructor(limits: StoreLimits = {}) {
    this.maxEntries = limits.maxEntries ?? DEFAULT_STORE_ENTRIES;
    this.maxBytes = limits.maxBytes ?? DEFAULT_STORE_BYTES;
  }

  get size(): number {
    return this.entries.size;
  }

  async get(owner: string, id: string): Promise<StoredResponse | undefined> {
    const k = keyOf(owner, id);
    const e = this.entries.get(k);
    if (!e) return undefined;
    // Refresh its place in the LRU order.
    this.entries.delete(k);
    this.entries.set(k, e);
    return e.value;
  }

  async item(owner: string, id: string): Promise<unknown> {
    return this.items.get(keyOf(owner, id))?.item;
  }

  async put(owner: string, value: StoredResponse): Promise<void> {
    if (this.maxEntries <= 0) return;
    const bytes = entryBytes(value);
    if (bytes > this.maxBytes) return;
    const k = keyOf(owner, value.id);
    const old = this.entries.get(k);
    if (old) this.drop(k, old);
    this.entries.set(k, { owner, value, bytes });
    this.bytes += bytes;
    for (const [itemId, item] of itemsWithIds(value)) {
      const ik = keyOf(owner, itemId);
      const known = this.items.get(ik);
      this.items.set(ik, { item, refs: (known?.refs ?? 0) + 1 });
    }
    while (this.entries.size > this.maxEntries || this.bytes > this.maxBytes) {
      const [oldest, e] = this.entries.entries().next().value as [string, { owner: string; value: StoredResponse; bytes: number }];
      this.drop(oldest, e);
    }
  }

  async check(): Promise<void> {}

  async close(): Promise<void> {
    this.entries.clear();
    this.items.clear();
    this.bytes = 0;
  }

  private drop(k: string, e: { owner: string; value: StoredResponse; bytes: number }): void {
    this.entries.delete(k);
    this.bytes -= e.bytes;
    for (const [itemId] of itemsWithIds(e.value)) {
      const ik = keyOf(e.owner, itemId);
      const known = this.items.get(ik);
      if (known && --known.refs === 0) this.items.delete(ik);
    }
  }
}
