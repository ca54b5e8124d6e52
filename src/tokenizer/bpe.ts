// Byte-pair encoding over tiktoken-style ranks: a token's id is its merge priority, and any two
// adjacent parts whose concatenation is a token may merge, lowest id first, leftmost on ties.
// That is the semantics of tiktoken, openai/harmony, gpt-tokenizer and js-tiktoken.

/** Byte strings by id, with an allocation-free lookup from a byte range to its id. */
export class ByteTokenTable {
  private readonly pool: Uint8Array;
  private readonly offsets: Uint32Array;
  private readonly slots: Int32Array;
  private readonly mask: number;

  /** tokens[id] is the id's bytes; holes are ids without bytes. */
  constructor(tokens: ReadonlyArray<Uint8Array | undefined>) {
    let total = 0;
    for (const t of tokens) total += t?.length ?? 0;
    this.pool = new Uint8Array(total);
    this.offsets = new Uint32Array(tokens.length + 1);
    let size = 1;
    while (size < tokens.length * 2) size <<= 1;
    this.slots = new Int32Array(size).fill(-1);
    this.mask = size - 1;
    let at = 0;
    for (let id = 0; id < tokens.length; id++) {
      this.offsets[id] = at;
      const t = tokens[id];
      if (t === undefined || t.length === 0) continue;
      this.pool.set(t, at);
      at += t.length;
      if (this.get(this.pool, at - t.length, at) >= 0) throw new Error(`token ${id} duplicates another token's bytes`);
      let slot = hashBytes(t, 0, t.length) & this.mask;
      while (this.slots[slot]! >= 0) slot = (slot + 1) & this.mask;
      this.slots[slot] = id;
    }
    this.offsets[tokens.length] = at;
  }

  get size(): number {
    return this.offsets.length - 1;
  }

  /** The id whose bytes are buf[start, end), or -1. */
  get(buf: Uint8Array, start: number, end: number): number {
    const len = end - start;
    let slot = hashBytes(buf, start, end) & this.mask;
    for (let id = this.slots[slot]!; id >= 0; id = this.slots[slot]!) {
      const at = this.offsets[id]!;
      if (this.offsets[id + 1]! - at === len) {
        let k = 0;
        while (k < len && this.pool[at + k] === buf[start + k]) k++;
        if (k === len) return id;
      }
      slot = (slot + 1) & this.mask;
    }
    return -1;
  }

  /** Byte length of id (0 for ids without bytes). */
  length(id: number): number {
    return id >= 0 && id < this.size ? this.offsets[id + 1]! - this.offsets[id]! : 0;
  }

  /** The bytes of id (a view; do not write), or undefined. */
  bytes(id: number): Uint8Array | undefined {
    if (!Number.isInteger(id) || id < 0 || id >= this.size) return undefined;
    const start = this.offsets[id]!;
    const end = this.offsets[id + 1]!;
    return end > start ? this.pool.subarray(start, end) : undefined;
  }
}

function hashBytes(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5; // FNV-1a
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h >>> 0;
}

const TWO_32 = 2 ** 32;

/**
 * The merge loop over one piece. Parts live in a linked list indexed by their first byte, and a
 * binary heap keyed by (rank, position) picks the next merge, so long pieces (a megabyte of
 * spaces) cost n log n instead of tiktoken's n^2. Scratch arrays are reused between calls.
 */
export class BytePairMerger {
  private next = new Int32Array(64);
  private prev = new Int32Array(64);
  private heap = new Float64Array(128);
  private heapSize = 0;

  constructor(private readonly table: ByteTokenTable) {}

  /** Appends the ids of buf[0, len) to out. */
  encode(buf: Uint8Array, len: number, out: number[]): void {
    this.merge(buf, len, Infinity);
    for (let p = 0; p < len; p = this.next[p]!) out.push(this.table.get(buf, p, this.next[p]!));
  }

  /** Start offsets of the parts of buf[0, len) after merging only tokens with id < maxRank. */
  parts(buf: Uint8Array, len: number, maxRank: number): number[] {
    this.merge(buf, len, maxRank);
    const starts: number[] = [];
    for (let p = 0; p < len; p = this.next[p]!) starts.push(p);
    return starts;
  }

  private merge(buf: Uint8Array, len: number, maxRank: number): void {
    if (this.next.length < len + 1) {
      const cap = Math.max(len + 1, this.next.length * 2);
      this.next = new Int32Array(cap);
      this.prev = new Int32Array(cap);
      // Each merge pops one entry and pushes at most two, so the heap stays under 2 * len.
      this.heap = new Float64Array(2 * cap);
    }
    const { next, prev, table } = this;
    this.heapSize = 0;
    for (let i = 0; i < len; i++) {
      next[i] = i + 1;
      prev[i] = i - 1;
    }
    for (let i = 0; i + 1 < len; i++) {
      const r = table.get(buf, i, i + 2);
      if (r >= 0 && r < maxRank) this.heap[this.heapSize++] = r * TWO_32 + i;
    }
    for (let i = (this.heapSize >> 1) - 1; i >= 0; i--) this.siftDown(i);

    while (this.heapSize > 0) {
      const key = this.pop();
      const rank = Math.floor(key / TWO_32);
      const left = key - rank * TWO_32;
      // Stale entry: the left part is gone, or the pair no longer spans exactly this token.
      if (prev[left] === -2) continue;
      const right = next[left]!;
      if (right >= len || next[right]! - left !== table.length(rank)) continue;
      const after = next[right]!;
      next[left] = after;
      prev[right] = -2;
      if (after < len) prev[after] = left;
      const before = prev[left]!;
      if (before >= 0) this.pushPair(buf, before, after, maxRank);
      if (after < len) this.pushPair(buf, left, next[after]!, maxRank);
    }
  }

  private pushPair(buf: Uint8Array, start: number, end: number, maxRank: number): void {
    const r = this.table.get(buf, start, end);
    if (r < 0 || r >= maxRank) return;
    let i = this.heapSize++;
    const key = r * TWO_32 + start;
    const heap = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]! <= key) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = key;
  }

  private pop(): number {
    const heap = this.heap;
    const top = heap[0]!;
    heap[0] = heap[--this.heapSize]!;
    this.siftDown(0);
    return top;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = this.heapSize;
    const key = heap[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && heap[c + 1]! < heap[c]!) c++;
      if (heap[c]! >= key) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = key;
  }
}
