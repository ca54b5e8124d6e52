// What is precomputed once per tokenizer: the byte trie of every ordinary token, flattened in
// depth-first order (a walk skips a dead prefix's whole subtree in one jump), a second trie of the
// tokens that are not "plain string body", and, for the plain ones, their character counts. Inside
// a free JSON string at a character boundary, a plain token (no quote, backslash, control byte, and
// whole UTF-8 characters) is allowed exactly when its characters fit, so that part of the mask is a
// precomputed bitmask per remaining length; only the other tokens are walked.
import { Automaton, Frame, K_STR, utf8Lead } from './automaton.js';

export interface TokenSource {
  readonly vocabSize: number;
  tokenBytes(id: number): Uint8Array | undefined;
}

/** A flattened trie: node i has byte[i], depth[i] (1 = a child of the root), token[i] (-1: none), end[i] (past its subtree). */
export interface FlatTrie {
  byte: Uint8Array;
  depth: Uint8Array;
  token: Int32Array;
  end: Int32Array;
  size: number;
}

export class VocabIndex {
  /** Mask words: ceil(vocabSize / 32). */
  readonly words: number;
  readonly all: FlatTrie;
  readonly other: FlatTrie;
  /** Characters of each plain-body token, 0 for the others. */
  readonly plainChars: Uint16Array;
  private readonly plainByChars: number[][] = [];
  private readonly plainMasks: Uint32Array[] = [];
  readonly maxPlainChars: number;

  private constructor(
    readonly vocabSize: number,
    /** Ids of the ordinary (byte) tokens: every id with bytes below the first special. */
    readonly ordinaryIds: Int32Array,
    private readonly tokens: (Uint8Array | undefined)[],
  ) {
    this.words = Math.ceil(vocabSize / 32);
    this.plainChars = new Uint16Array(vocabSize);
    let maxChars = 0;
    const others: number[] = [];
    for (const id of ordinaryIds) {
      const n = plainCharCount(tokens[id]!);
      if (n > 0) {
        this.plainChars[id] = n;
        (this.plainByChars[n] ??= []).push(id);
        if (n > maxChars) maxChars = n;
      } else others.push(id);
    }
    this.maxPlainChars = maxChars;
    let acc = new Uint32Array(this.words);
    this.plainMasks.push(acc);
    for (let n = 1; n <= maxChars; n++) {
      acc = acc.slice();
      for (const id of this.plainByChars[n] ?? []) acc[id >>> 5]! |= 1 << (id & 31);
      this.plainMasks.push(acc);
    }
    this.all = buildTrie(ordinaryIds, tokens);
    this.other = buildTrie(Int32Array.from(others), tokens);
  }

  private static cache = new WeakMap<object, VocabIndex>();

  /**
   * The index for a tokenizer (cached per tokenizer object). `vocabSize` is the model's (the mask
   * length); ids at or above `firstSpecial` are never part of JSON or header text.
   */
  static for(tok: TokenSource, opts: { vocabSize?: number; firstSpecial?: number } = {}): VocabIndex {
    const hit = VocabIndex.cache.get(tok);
    const V = opts.vocabSize ?? tok.vocabSize;
    if (hit && hit.vocabSize === V) return hit;
    const firstSpecial = opts.firstSpecial ?? 199998;
    const tokens: (Uint8Array | undefined)[] = [];
    const ids: number[] = [];
    for (let id = 0; id < Math.min(V, firstSpecial); id++) {
      const b = tok.tokenBytes(id);
      if (b && b.length) {
        tokens[id] = b;
        ids.push(id);
      }
    }
    const index = new VocabIndex(V, Int32Array.from(ids), tokens);
    VocabIndex.cache.set(tok, index);
    return index;
  }

  /** Bytes of an ordinary token (undefined for specials and holes). */
  tokenBytesOf(id: number): Uint8Array | undefined {
    return this.tokens[id];
  }

  /** Bitmask of the plain tokens of at most `chars` characters (all built at load, cumulatively). */
  plainMask(chars: number): Uint32Array {
    return this.plainMasks[Math.min(chars, this.maxPlainChars)]!;
  }

  /**
   * ORs into `mask` every ordinary token whose bytes keep some state alive. Returns the number of
   * trie nodes visited (for benchmarks).
   */
  fill(aut: Automaton, states: Frame[], mask: Uint32Array): number {
    if (!states.length) return 0;
    // Every state inside a free string at a character boundary (anyOf can leave several): a plain
    // token is allowed iff its characters fit in some state's room.
    let room = -1;
    for (const s of states) {
      if (s.k !== K_STR || s.c !== 0 || s.e !== 0) {
        room = -1;
        break;
      }
      room = Math.max(room, s.b - s.a);
    }
    if (room >= 0) {
      if (room > 0) {
        const plain = this.plainMask(room);
        for (let w = 0; w < mask.length; w++) mask[w]! |= plain[w]!;
      }
      return walk(this.other, aut, states, mask);
    }
    return walk(this.all, aut, states, mask);
  }
}

function walk(t: FlatTrie, aut: Automaton, start: Frame[], mask: Uint32Array): number {
  const stack: Frame[][] = [start];
  const { byte, depth, token, end } = t;
  let visited = 0;
  for (let i = 0; i < t.size; ) {
    visited++;
    const d = depth[i]!;
    const next = aut.step(stack[d - 1]!, byte[i]!);
    if (!next.length) {
      i = end[i]!;
      continue;
    }
    stack[d] = next;
    const id = token[i]!;
    if (id >= 0) mask[id >>> 5]! |= 1 << (id & 31);
    i++;
  }
  return visited;
}

/** Characters if every byte is plain string body and the UTF-8 is whole and valid; else 0. */
function plainCharCount(b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < b.length; ) {
    const x = b[i]!;
    if (x < 0x20 || x === 0x22 || x === 0x5c) return 0;
    if (x < 0x80) {
      i++;
      n++;
      continue;
    }
    let u = utf8Lead(x);
    if (!u) return 0;
    i++;
    for (let left = u >> 16; left > 0; left--) {
      const y = b[i];
      if (y === undefined || y < ((u >> 8) & 0xff) || y > (u & 0xff)) return 0;
      u = 0x80bf | ((left - 1) << 16);
      i++;
    }
    n++;
  }
  return n > 0xffff ? 0 : n;
}


/** Builds the flattened trie of the given tokens (sorted by bytes, then shared prefixes merged). */
export function buildTrie(ids: Int32Array, tokens: (Uint8Array | undefined)[]): FlatTrie {
  const order = Array.from(ids).sort((x, y) => Buffer.compare(tokens[x]!, tokens[y]!));
  let cap = 1024;
  let byte = new Uint8Array(cap);
  let depth = new Uint8Array(cap);
  let token = new Int32Array(cap);
  let end = new Int32Array(cap);
  let n = 0;
  // open[d] = node index of the path's node at depth d+1
  const open: number[] = [];
  let prev: Uint8Array | null = null;
  for (const id of order) {
    const t = tokens[id]!;
    if (t.length > 255) continue; // depth is a byte; no real token is this long
    let l = 0;
    if (prev) while (l < prev.length && l < t.length && prev[l] === t[l]) l++;
    // close the nodes deeper than the shared prefix
    for (let d = open.length - 1; d >= l; d--) end[open[d]!] = n;
    open.length = l;
    for (let d = l; d < t.length; d++) {
      if (n === cap) {
        cap *= 2;
        byte = grow(byte, cap);
        depth = grow(depth, cap);
        token = grow(token, cap);
        end = grow(end, cap);
      }
      byte[n] = t[d]!;
      depth[n] = d + 1;
      token[n] = -1;
      open.push(n);
      n++;
    }
    token[open[t.length - 1]!] = id;
    prev = t;
  }
  for (const i of open) end[i] = n;
  return { byte, depth, token, end, size: n };
}

function grow<T extends Uint8Array | Int32Array>(a: T, cap: number): T {
  const b = new (a.constructor as new (n: number) => T)(cap);
  b.set(a);
  return b;
}
