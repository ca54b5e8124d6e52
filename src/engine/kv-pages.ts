// Host-side bookkeeping of the paged KV cache: page pools with reference counts, the prefix cache
// that shares full blocks of prompt tokens between sequences, and the block manager the scheduler
// asks for pages (vLLM's KVCacheManager: computed blocks, allocate, free). Nothing here touches
// the GPU; the scheduler decides with it which pages each step's tokens write and read.
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
      if (oldest.done) throw new Error(`KV pool ${this.name}: no page left (${this.size} pages, ${this.free.length} free, ${this.evictable.size} evictable)`);
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
    if (!(this.refs[p]! > 0)) throw new Error(`KV pool ${this.name}: page ${p} released more often than held (refs ${this.refs[p]}, ${this.size} pages, ${this.free.length} free, ${this.evictable.size} evictable)`);
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
}

/** The pages a sequence holds, per logical block of its positions. */
export interface BlockTable {
  /** Tokens so far (the prompt, then generated ones): the prefix cache hashes their blocks. */
  readonly tokens: readonly number[];
  /** Positions whose KV is written or on its way. */
  readonly computed: number;
  /** Page per logical block, full-attention group. */
  readonly full: number[];
  /** Page per logical block, sliding group (-1: dropped or never held). */
  readonly sliding: number[];
  /** Chained hashes of the complete blocks of `tokens` (grown lazily). */
  hashes: string[];
  /** Blocks offered to the prefix cache so far. */
  registered: number;
  /** No prefix-cache hit (the caller wants every prompt row's logits). */
  readonly noCache: boolean;
}

export interface KvBlockOptions {
  pageSize: number;
  /** Pages of the full-attention group (0: the model has no full layers). */
  fullPages: number;
  /** Pages of the sliding group (0: no sliding layers). */
  slidingPages: number;
  window: number;
  prefixCaching: boolean;
}

/**
 * The scheduler's view of the KV pages: which blocks of a sequence are computed already (prefix
 * cache), whether its next tokens get pages, and giving them back. Sliding-window layers keep only
 * the blocks still inside the window: allocate() drops the ones that fell out.
 */
export class KvBlockManager {
  readonly fullPool: PagePool | null;
  readonly slidingPool: PagePool | null;
  readonly cache: PrefixCache;

  constructor(readonly o: KvBlockOptions) {
    this.fullPool = o.fullPages > 0 ? new PagePool('full', o.fullPages) : null;
    this.slidingPool = o.slidingPages > 0 ? new PagePool('sliding', o.slidingPages) : null;
    if (!this.fullPool && !this.slidingPool) throw new Error('the KV cache needs pages for at least one layer group');
    this.cache = new PrefixCache(this.fullPool, this.slidingPool, o.pageSize, o.window);
  }

  /** The pool /metrics reports: the full-attention group's, or the sliding one's. */
  get mainPool(): PagePool {
    return this.fullPool ?? this.slidingPool!;
  }

  /**
   * Attaches the longest prefix-cache hit of a sequence being admitted (it holds no pages yet) and
   * returns the positions it covers. At least one token is left to compute: the step that
   * produces the next logits.
   */
  computedBlocks(seq: BlockTable): number {
    if (!this.o.prefixCaching || seq.noCache) return 0;
    seq.hashes = blockHashes(seq.tokens, this.o.pageSize, seq.hashes);
    const hit: CachedBlock[] = this.cache.lookup(seq.hashes, seq.tokens.length - 1);
    const lo = hit.length ? this.lowBlock(hit.length * this.o.pageSize) : 0;
    hit.forEach((b, i) => {
      if (this.fullPool) {
        this.fullPool.retain(b.full);
        seq.full.push(b.full);
      }
      if (this.slidingPool) {
        const keep = i >= lo && b.sliding >= 0;
        if (keep) this.slidingPool.retain(b.sliding);
        seq.sliding.push(keep ? b.sliding : -1);
      }
    });
    seq.registered = hit.length;
    return hit.length * this.o.pageSize;
  }

  /**
   * Pages for positions [computed, computed + n), after dropping the sliding blocks that fell out
   * of the window; false (and nothing taken) when they do not fit with `reserve` full pages to
   * spare.
   */
  allocate(seq: BlockTable, n: number, reserve = 0): boolean {
    const pos0 = seq.computed;
    const end = pos0 + n;
    this.dropSliding(seq, pos0);
    const blocks = Math.ceil(end / this.o.pageSize);
    let sliding = 0;
    if (this.slidingPool) {
      for (let b = this.lowBlock(pos0); b < blocks; b++) if (b >= seq.sliding.length || seq.sliding[b]! < 0) sliding++;
    }
    const full = this.fullPool ? Math.max(0, blocks - seq.full.length) : 0;
    if (this.fullPool && this.fullPool.available < full + reserve) return false;
    if (this.slidingPool && this.slidingPool.available < sliding) return false;
    if (this.fullPool) while (seq.full.length < blocks) seq.full.push(this.fullPool.alloc());
    if (this.slidingPool) {
      while (seq.sliding.length < blocks) seq.sliding.push(-1);
      for (let b = this.lowBlock(pos0); b < blocks; b++) if (seq.sliding[b]! < 0) seq.sliding[b] = this.slidingPool.alloc();
    }
    return true;
  }

  /** Gives back every page of the sequence (shared ones stay with their other holders and the cache). */
  free(seq: BlockTable): void {
    for (const p of seq.full) this.fullPool!.release(p);
    for (const p of seq.sliding) if (p >= 0) this.slidingPool!.release(p);
    seq.full.length = 0;
    seq.sliding.length = 0;
    seq.registered = 0;
  }

  /** Offers the sequence's complete blocks up to position `confirmed` (ids known) to the prefix cache. */
  register(seq: BlockTable, confirmed: number): void {
    if (!this.o.prefixCaching) return;
    const P = this.o.pageSize;
    const done = Math.floor(Math.min(confirmed, seq.tokens.length) / P);
    if (done <= seq.registered) return;
    seq.hashes = blockHashes(seq.tokens.slice(0, done * P), P, seq.hashes);
    for (let b = seq.registered; b < done; b++) {
      this.cache.insert(seq.hashes[b]!, this.fullPool ? seq.full[b]! : -1, this.slidingPool ? seq.sliding[b]! : -1);
    }
    seq.registered = done;
  }

  private lowBlock(pos: number): number {
    return Math.floor(Math.max(0, pos + 1 - this.o.window) / this.o.pageSize);
  }

  /**
   * Sliding pages that fall out of the window before position pos are released, except those of
   * complete blocks the prefix cache has not registered yet (a step planned ahead can get here
   * before the previous step's blocks are registered; the cache keeps their pages).
   */
  private dropSliding(seq: BlockTable, pos: number): void {
    if (!this.slidingPool) return;
    const lo = Math.min(this.lowBlock(pos), seq.sliding.length, this.o.prefixCaching ? seq.registered : Infinity);
    for (let b = 0; b < lo; b++) {
      if (seq.sliding[b]! >= 0) {
        this.slidingPool.release(seq.sliding[b]!);
        seq.sliding[b] = -1;
      }
    }
  }
}
