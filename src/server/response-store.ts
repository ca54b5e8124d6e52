// Finished Responses kept in memory for `previous_response_id` and `item_reference` input items,
// bounded: the least recently used entry goes first when the count or the total size passes its
// limit (its items go with it).

export interface StoredResponse {
  id: string;
  /** The whole conversation input this response answered (earlier turns included). */
  input: unknown[];
  /** The response's output items (reasoning, messages, function calls). */
  output: unknown[];
  /** The full response object, for GET /v1/responses/{id}. */
  response: Record<string, unknown>;
}

export class ResponseStore {
  private readonly entries = new Map<string, { value: StoredResponse; bytes: number }>();
  /** Input and output items with an id, by id, with the number of stored responses holding them. */
  private readonly items = new Map<string, { item: unknown; refs: number }>();
  private bytes = 0;

  constructor(
    readonly maxEntries = 1000,
    readonly maxBytes = 256 * 1024 * 1024,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(id: string): StoredResponse | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    // Refresh its place in the LRU order.
    this.entries.delete(id);
    this.entries.set(id, e);
    return e.value;
  }

  /** A stored response's input or output item by its id (for `item_reference` inputs). */
  item(id: string): unknown {
    return this.items.get(id)?.item;
  }

  put(value: StoredResponse): void {
    if (this.maxEntries <= 0) return;
    // JSON size is a fair estimate of what an entry holds (its strings dominate).
    const bytes = JSON.stringify(value.input).length + JSON.stringify(value.output).length;
    if (bytes > this.maxBytes) return;
    const old = this.entries.get(value.id);
    if (old) this.drop(value.id, old);
    this.entries.set(value.id, { value, bytes });
    this.bytes += bytes;
    for (const [itemId, item] of itemsWithIds(value)) {
      const known = this.items.get(itemId);
      this.items.set(itemId, { item, refs: (known?.refs ?? 0) + 1 });
    }
    while (this.entries.size > this.maxEntries || this.bytes > this.maxBytes) {
      const [oldest, e] = this.entries.entries().next().value as [string, { value: StoredResponse; bytes: number }];
      this.drop(oldest, e);
    }
  }

  private drop(id: string, e: { value: StoredResponse; bytes: number }): void {
    this.entries.delete(id);
    this.bytes -= e.bytes;
    for (const [itemId] of itemsWithIds(e.value)) {
      const known = this.items.get(itemId);
      if (known && --known.refs === 0) this.items.delete(itemId);
    }
  }
}

function itemsWithIds(r: StoredResponse): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const item of [...r.input, ...r.output]) {
    const id = (item as { id?: unknown } | null)?.id;
    if (typeof id === 'string') out.push([id, item]);
  }
  return out;
}
