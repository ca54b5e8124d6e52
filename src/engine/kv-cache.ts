// The paged KV cache on the GPU: per layer a K and a V pool of fixed-size pages, and one page
// table per layer group (full-attention, sliding-window) with a row per sequence slot. How many
// pages each group gets is planned up front from the memory given to the KV cache; the host's
// mirror of the page tables (PageTableMirror) writes what changed before each step.
import type { Gpu } from '../gpu/device.js';
import { storageBuffer, writeBuffer } from '../gpu/buffers.js';
import type { ModelConfig } from '../model/config.js';
import { kvPageBytes } from './ops/attention.js';

export type KvDtype = 'f16' | 'f32';

/** Positions per sequence the default KV cache holds room for (when two contexts hold less). */
export const DEFAULT_SEQ_POSITIONS = 4096;

export interface KvPlanOptions {
  /** Positions one sequence may reach. */
  context: number;
  seqs: number;
  /** Tokens per step. */
  batchTokens: number;
  pageSize: number;
  dtype: KvDtype;
  /**
   * Bytes for the whole KV cache; default: room for two full contexts or for every sequence at
   * DEFAULT_SEQ_POSITIONS, whichever is more (one context when seqs is 1).
   */
  memory?: number;
  /** The adapter's maxStorageBufferBindingSize: each layer's pool is one binding. */
  maxBinding: number;
}

export interface KvPlan {
  pageSize: number;
  dtype: KvDtype;
  /** Page-table row length. */
  maxBlocks: number;
  fullPages: number;
  slidingPages: number;
  /** Bytes of one page of one pool (K or V) of one layer. */
  pageBytes: number;
  bytes: number;
  /** Positions the full-attention pages hold in all (shared by the running sequences). */
  positions: number;
}

export function planKv(c: ModelConfig, o: KvPlanOptions): KvPlan {
  const P = o.pageSize;
  const fullLayers = c.layerTypes.filter((t) => t === 'full').length;
  const slidingLayers = c.numLayers - fullLayers;
  const maxBlocks = Math.ceil(o.context / P);
  const pageBytes = kvPageBytes(c, { pageSize: P, f32: o.dtype === 'f32' });
  // Sliding layers hold the window plus the step's chunk per sequence: sized for the worst step,
  // twice over so the prefix cache can keep recent blocks.
  const perSeq = Math.min(maxBlocks, Math.ceil((c.slidingWindow - 1) / P) + 3);
  const slidingPages = slidingLayers ? 2 * o.seqs * perSeq + Math.ceil(o.batchTokens / P) : 0;
  const slidingBytes = slidingLayers * 2 * slidingPages * pageBytes;
  let fullPages = 0;
  if (fullLayers) {
    const maxPages = Math.floor(o.maxBinding / pageBytes);
    if (o.memory !== undefined) {
      fullPages = Math.floor((o.memory - slidingBytes) / (fullLayers * 2 * pageBytes));
      if (fullPages < 1) {
        throw new Error(`KV memory ${o.memory} bytes is too small: the sliding layers alone need ${slidingBytes} bytes and a page of the full layers ${fullLayers * 2 * pageBytes}`);
      }
    } else {
      // two full contexts, or every sequence at up to DEFAULT_SEQ_POSITIONS when that is more:
      // a short context must not leave most of the batch waiting for pages
      fullPages = o.seqs > 1 ? Math.max(2 * maxBlocks, o.seqs * Math.min(maxBlocks, Math.ceil(DEFAULT_SEQ_POSITIONS / P))) : maxBlocks;
    }
    if (fullPages > maxPages) {
      if (maxPages < maxBlocks && o.memory === undefined) {
        throw new Error(
          `a full-attention layer's KV pool for context ${o.context} needs ${maxBlocks * pageBytes} bytes, over this adapter's ` +
            `maxStorageBufferBindingSize ${o.maxBinding}; use a smaller --context`,
        );
      }
      fullPages = maxPages;
    }
  }
  if (slidingPages * pageBytes > o.maxBinding) {
    throw new Error(`the sliding layers' KV pool (${slidingPages * pageBytes} bytes) exceeds maxStorageBufferBindingSize ${o.maxBinding}; use fewer sequences or tokens per step`);
  }
  return {
    pageSize: P,
    dtype: o.dtype,
    maxBlocks,
    fullPages,
    slidingPages,
    pageBytes,
    bytes: 2 * pageBytes * (fullLayers * fullPages + slidingLayers * slidingPages),
    positions: fullLayers ? fullPages * P : o.context,
  };
}

export interface KvBuffers {
  /** u32 [seqs][maxBlocks] page tables; null when the model has no layer of the group. */
  fullTable: GPUBuffer | null;
  slidingTable: GPUBuffer | null;
  layers: { k: GPUBuffer; v: GPUBuffer }[];
}

export function allocateKv(gpu: Gpu, c: ModelConfig, plan: KvPlan, seqs: number): KvBuffers {
  const table = (name: string, pages: number) => (pages ? storageBuffer(gpu, seqs * plan.maxBlocks * 4, `kv.table.${name}`) : null);
  return {
    fullTable: table('full', plan.fullPages),
    slidingTable: table('sliding', plan.slidingPages),
    layers: c.layerTypes.map((t, i) => {
      const bytes = plan.pageBytes * (t === 'full' ? plan.fullPages : plan.slidingPages);
      return { k: storageBuffer(gpu, bytes, `kv.k.${i}`), v: storageBuffer(gpu, bytes, `kv.v.${i}`) };
    }),
  };
}

/** What a slot's page-table rows must say: the sequence's pages, per group. */
export interface SlotPages {
  readonly slot: number;
  /** Counts the sequence's admissions: a new one means new pages in the same or another slot. */
  readonly admissions: number;
  readonly full: readonly number[];
  readonly sliding: readonly number[];
}

/**
 * The GPU page tables as the host last wrote them: sync() writes only the entries of a sequence's
 * slot that changed since its last step (new blocks; dropped sliding blocks are never read again).
 * A sequence admitted again (after preemption) starts over.
 */
export class PageTableMirror {
  private readonly synced = new WeakMap<SlotPages, { slot: number; admissions: number; full: number; sliding: number }>();

  constructor(
    private readonly gpu: Gpu,
    private readonly kv: Pick<KvBuffers, 'fullTable' | 'slidingTable'>,
    private readonly maxBlocks: number,
  ) {}

  sync(seq: SlotPages): void {
    let m = this.synced.get(seq);
    if (!m || m.slot !== seq.slot || m.admissions !== seq.admissions) {
      m = { slot: seq.slot, admissions: seq.admissions, full: 0, sliding: 0 };
      this.synced.set(seq, m);
    }
    const row = seq.slot * this.maxBlocks;
    if (this.kv.fullTable && seq.full.length > m.full) {
      writeBuffer(this.gpu, this.kv.fullTable, (row + m.full) * 4, Uint32Array.from(seq.full.slice(m.full)));
      m.full = seq.full.length;
    }
    if (this.kv.slidingTable) {
      let from = m.sliding;
      while (from < seq.sliding.length && seq.sliding[from]! < 0) from++;
      if (seq.sliding.length > from) {
        writeBuffer(this.gpu, this.kv.slidingTable, (row + from) * 4, Uint32Array.from(seq.sliding.slice(from), (p) => Math.max(p, 0)));
      }
      m.sliding = seq.sliding.length;
    }
  }
}
