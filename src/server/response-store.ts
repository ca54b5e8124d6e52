// Finished Responses kept in memory for `previous_response_id`, bounded: the least recently used
// entry goes first when the count or the total size passes its limit.

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

  put(value: StoredResponse): void {
    if (this.maxEntries <= 0) return;
    // JSON size is a fair estimate of what an entry holds (its strings dominate).
    const bytes = JSON.stringify(value.input).length + JSON.stringify(value.output).length;
    if (bytes > this.maxBytes) return;
    const old = this.entries.get(value.id);
    if (old) {
      this.bytes -= old.bytes;
      this.entries.delete(value.id);
    }
    this.entries.set(value.id, { value, bytes });
    this.bytes += bytes;
    while (this.entries.size > this.maxEntries || this.bytes > this.maxBytes) {
      const [oldest, e] = this.entries.entries().next().value as [string, { bytes: number }];
      this.entries.delete(oldest);
      this.bytes -= e.bytes;
    }
  }
}
