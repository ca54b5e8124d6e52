// Host-side bookkeeping of the paged KV cache: page pools with reference counts, and the prefix
// cache that shares full blocks of prompt tokens between sequences. Nothing here touches the GPU;
// the scheduler decides with it which pages each step's tokens write and read.
//
// Two groups of pages: full-attention layers keep every block of a sequence; sliding-window layers
// keep only the blocks still inside the window (and drop the rest as the sequence moves on). A
// page id indexes the same slot in every layer of its group.
import { createHash } from 'node:crypto';

/**
 * Pages of one group. A page is free, held by sequences (refs > 0), or cached with no holder
 * (evictable, least recently released first). Allocation takes a free page, else evicts the oldest
 * evictable one (the prefix cache drops its block).
 */
export class PagePool {
  readonly refs: Int32Array;
  /** 1 while the prefix cache refers to the page. */
  readonly cached: Uint8Array;
  private readonly free: number[];
  private readonly evictable = new Map<number, true>();
  /** Told when an evictable page is taken back for reuse. */
  onEvict: (page: number) => void = () => {};

  constructor(
    readonly name: string,
    readonly size: number,
  ) {
    this.refs = new Int32Array(size);
    this.cached = new Uint8Array(size);
    this.free = Array.from({ length: size }, (_, i) => size - 1 - i);
  }

  /** Pages an allocation can still get (free or evictable). */
  get available(): number {
    return this.free.length + this.evictable.size;
  }

  /** Pages held by sequences. */
  get inUse(): number {
    return this.size - this.available;
  }

  /** Cached pages nobody holds. */
  get evictableCount(): number {
    return this.evictable.size;
  }

  alloc(): number {
    let p = this.free.pop();
    if (p === undefined) {
      const oldest = this.evictable.keys().next();
      if (oldest.done) throw new Error(`KV pool ${this.name}: no page left`);
      p = oldest.value;
      this.evictable.delete(p);
      this.cached[p] = 0;
      this.onEvict(p);
    }
    this.refs[p] = 1;
    return p;
  }

  retain(p: number): void {
    if (this.refs[p] === 0) this.evictable.delete(p);
    this.refs[p]!++;
  }

  release(p: number): void {
    if (this.refs[p]! <= 0) throw new Error(`KV pool ${this.name}: page ${p} released more often than held`);
    if (--this.refs[p]! > 0) return;
    if (this.cached[p]) this.evictable.set(p, true);
    else this.free.push(p);
  }

  markCached(p: number): void {
    this.cached[p] = 1;
  }

  /** The cache forgets the page: free it when nobody holds it. */
  uncache(p: number): void {
    if (!this.cached[p]) return;
    this.cached[p] = 0;
    if (this.refs[p] === 0 && this.evictable.delete(p)) this.free.push(p);
  }
}

/** A cached block of `pageSize` prompt tokens: its page in each group (-1: none). */
export interface CachedBlock {
  hash: string;
  full: number;
  sliding: number;
}

/** Chained hashes of the full blocks of `tokens`: block i's hash covers tokens [0, (i + 1)·size). */
export function blockHashes(tokens: readonly number[], size: number, from: readonly string[] = []): string[] {
  const out = from.slice();
  const ids = new Uint32Array(size);
  for (let b = out.length; (b + 1) * size <= tokens.length; b++) {
    for (let i = 0; i < size; i++) ids[i] = tokens[b * size + i]!;
    const h = createHash('sha256');
    if (b > 0) h.update(out[b - 1]!);
    h.update(new Uint8Array(ids.buffer));
    out.push(h.digest('base64'));
  }
  return out;
}

/**
 * Full blocks of earlier sequences' tokens, by chained hash, shared read-only: a sequence whose
 * tokens start with the same blocks reuses their pages and skips their prefill. A hit of m blocks
 * needs every block's full-layer page and, for sliding layers, the pages of the window before
 * position m·pageSize. Entries live while their pages do: pools evict least recently used pages.
 */
export class PrefixCache {
  private readonly byHash = new Map<string, CachedBlock>();
  private readonly byFull = new Map<number, CachedBlock>();
  private readonly bySliding = new Map<number, CachedBlock>();

  constructor(
    private readonly full: PagePool | null,
    private readonly sliding: PagePool | null,
    readonly pageSize: number,
    /** Sliding window of the sliding layers (unused without them). */
    private readonly window: number,
  ) {
    if (full) {
      full.onEvict = (p) => {
        const b = this.byFull.get(p);
        if (!b) return;
        this.byFull.delete(p);
        b.full = -1;
        // without its full-layer page a block is no use for a hit
        this.drop(b);
      };
    }
    if (sliding) {
      sliding.onEvict = (p) => {
        const b = this.bySliding.get(p);
        if (!b) return;
        this.bySliding.delete(p);
        b.sliding = -1;
        if (!full) this.drop(b);
      };
    }
  }

  get blocks(): number {
    return this.byHash.size;
  }

  private drop(b: CachedBlock): void {
    this.byHash.delete(b.hash);
    if (b.full >= 0) {
      this.byFull.delete(b.full);
      this.full!.uncache(b.full);
    }
    if (b.sliding >= 0) {
      this.bySliding.delete(b.sliding);
      this.sliding!.uncache(b.sliding);
    }
  }

  /**
   * The longest usable hit among `hashes` (the blocks of a prompt), covering at most `maxTokens`
   * tokens: the cached blocks of that prefix, in order (sliding pages below the window may be -1).
   */
  lookup(hashes: readonly string[], maxTokens: number): CachedBlock[] {
    const P = this.pageSize;
    const limit = Math.min(hashes.length, Math.floor(maxTokens / P));
    const found: (CachedBlock | undefined)[] = [];
    let fullRun = 0;
    for (let b = 0; b < limit; b++) {
      const e = this.byHash.get(hashes[b]!);
      found.push(e);
      if (this.full && fullRun === b && e && e.full >= 0) fullRun++;
    }
    const top = this.full ? fullRun : limit;
    // run[b]: consecutive blocks ending at b whose sliding page is cached
    const run: number[] = [];
    for (let b = 0; b < top; b++) {
      const ok = !this.sliding || (found[b] !== undefined && found[b]!.sliding >= 0);
      run.push(ok ? (b > 0 ? run[b - 1]! : 0) + 1 : 0);
    }
    for (let m = top; m > 0; m--) {
      if (this.sliding) {
        const lo = Math.floor(Math.max(0, m * P + 1 - this.window) / P);
        if (run[m - 1]! < m - lo) continue;
      }
      return found.slice(0, m) as CachedBlock[];
    }
    return [];
  }

  /** Caches a completed block (no-op when an equal block is cached already). */
  insert(hash: string, full: number, sliding: number): void {
    if (this.byHash.has(hash)) return;
    const b: CachedBlock = { hash, full, sliding };
    this.byHash.set(hash, b);
    if (full >= 0) {
      this.byFull.set(full, b);
      this.full!.markCached(full);
    }
    if (sliding >= 0) {
      this.bySliding.set(sliding, b);
      this.sliding!.markCached(sliding);
    }
  }

  /** The cached block a sliding page belongs to, if any (its page then outlives the window). */
  has(hash: string): boolean {
    return this.byHash.has(hash);
  }
}
