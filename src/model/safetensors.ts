// safetensors container: header parsing with strict validation, streaming tensor reads through
// a file handle (a 13 GB checkpoint never lives in memory at once), and a small writer.
// Format: u64 LE header length n, n bytes of UTF-8 JSON, then the data section; every
// data_offsets pair is relative to the first byte after the header.
import { open, type FileHandle } from 'node:fs/promises';

/** Any malformed or inconsistent checkpoint file, config or tensor. Messages name the file. */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** Bytes per element of every dtype the safetensors format defines. */
export const DTYPE_SIZES = {
  BF16: 2, F16: 2, F32: 4, F64: 8,
  I8: 1, I16: 2, I32: 4, I64: 8,
  U8: 1, U16: 2, U32: 4, U64: 8,
  BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
} as const;

export type Dtype = keyof typeof DTYPE_SIZES;

export function isDtype(s: unknown): s is Dtype {
  return typeof s === 'string' && Object.hasOwn(DTYPE_SIZES, s);
}

/** Largest header we accept; real headers are ~100 KB, this stops a corrupt length from allocating GBs. */
export const MAX_HEADER_BYTES = 100_000_000;

export const DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024;

/** One tensor of one file. `begin`/`end` are absolute byte offsets in the file. */
export interface TensorInfo {
  file: string;
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
  byteLength: number;
}

export function shapeElements(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function fmtShape(shape: readonly unknown[]): string {
  return `[${shape.join(', ')}]`;
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Parses and validates a header; `dataSize` = file size − 8 − headerLength. */
export function parseSafetensorsHeader(
  file: string,
  headerBytes: Uint8Array,
  dataOffset: number,
  dataSize: number,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new CheckpointError(`${file}: safetensors header is not valid UTF-8`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${file}: safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new CheckpointError(`${file}: safetensors header must be a JSON object`);
  }

  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        throw new CheckpointError(`${file}: "__metadata__" must be an object of strings`);
      }
      // The format says str -> str; tolerate other JSON values by keeping their JSON text.
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
      }
      continue;
    }
    const where = `${file}: tensor "${name}"`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw new CheckpointError(`${where}: header entry must be an object with dtype, shape, data_offsets`);
    }
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    if (!isDtype(dtype)) {
      throw new CheckpointError(
        `${where}: unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_SIZES).join(', ')})`,
      );
    }
    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
      throw new CheckpointError(`${where}: shape ${JSON.stringify(shape)} is not an array of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt)) {
      throw new CheckpointError(`${where}: data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [b, e] = offsets as [number, number];
    if (e < b) throw new CheckpointError(`${where}: data_offsets [${b}, ${e}] end before they begin`);
    if (e > dataSize) {
      throw new CheckpointError(
        `${where}: data_offsets [${b}, ${e}] extend past the end of the file (size ${dataOffset + dataSize}, data section ${dataSize} bytes)`,
      );
    }
    const elements = shapeElements(shape as number[]);
    const expected = elements * DTYPE_SIZES[dtype];
    if (!Number.isSafeInteger(expected) || expected !== e - b) {
      throw new CheckpointError(
        `${where}: shape ${fmtShape(shape)} × ${dtype} (${DTYPE_SIZES[dtype]} B) = ${expected} bytes, but data_offsets [${b}, ${e}] hold ${e - b}`,
      );
    }
    tensors.set(name, {
      file, name, dtype, shape: [...(shape as number[])],
      begin: dataOffset + b, end: dataOffset + e, byteLength: e - b,
    });
  }

  // Overlap check on sorted ranges; empty tensors occupy nothing and cannot overlap.
  const ranges = [...tensors.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1]!;
    const cur = ranges[i]!;
    if (cur.begin < prev.end) {
      const r = (t: TensorInfo) => `[${t.begin - dataOffset}, ${t.end - dataOffset}]`;
      throw new CheckpointError(
        `${file}: tensor "${cur.name}": data_offsets ${r(cur)} overlap tensor "${prev.name}" ${r(prev)}`,
      );
    }
  }
  return { tensors, metadata };
}

/** Reads exactly `length` bytes at `position` into `dst`, failing loudly on a short file. */
async function readFully(fh: FileHandle, dst: Uint8Array, position: number, what: string): Promise<void> {
  let done = 0;
  while (done < dst.byteLength) {
    const { bytesRead } = await fh.read(dst, done, dst.byteLength - done, position + done);
    if (bytesRead === 0) {
      throw new CheckpointError(`${what}: unexpected end of file at byte ${position + done} (file truncated or changed while open?)`);
    }
    done += bytesRead;
  }
}

export class SafetensorsFile {
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    /** File size in bytes. */
    readonly size: number,
    readonly headerLength: number,
    /** Absolute offset of the data section (8 + headerLength). */
    readonly dataOffset: number,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  /** Opens and validates; the handle stays open until close(). */
  static async open(path: string): Promise<SafetensorsFile> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw new CheckpointError(`${path}: cannot open (${(e as Error).message})`);
    }
    try {
      const size = (await fh.stat()).size;
      if (size < 8) throw new CheckpointError(`${path}: file is ${size} bytes, too short for a safetensors header`);
      const lenBuf = new Uint8Array(8);
      await readFully(fh, lenBuf, 0, path);
      const len = new DataView(lenBuf.buffer).getBigUint64(0, true);
      if (len > BigInt(MAX_HEADER_BYTES)) {
        throw new CheckpointError(`${path}: header length ${len} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt or not a safetensors file)`);
      }
      const headerLength = Number(len);
      if (headerLength > size - 8) {
        throw new CheckpointError(`${path}: header length ${headerLength} extends past the end of the file (size ${size})`);
      }
      const header = new Uint8Array(headerLength);
      await readFully(fh, header, 8, path);
      const dataOffset = 8 + headerLength;
      const { tensors, metadata } = parseSafetensorsHeader(path, header, dataOffset, size - dataOffset);
      return new SafetensorsFile(path, fh, size, headerLength, dataOffset, tensors, metadata);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  tensor(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new CheckpointError(`${this.path}: no tensor "${name}"`);
    return t;
  }

  /** Reads absolute file bytes [begin, end) into a fresh buffer. */
  async readRange(begin: number, end: number, what = this.path): Promise<Uint8Array> {
    if (this.closed) throw new CheckpointError(`${what}: file already closed`);
    const out = new Uint8Array(end - begin);
    await readFully(this.fh, out, begin, what);
    return out;
  }

  /**
   * Streams a tensor's bytes (or the sub-range [begin, end) of them) in fresh chunks of at most
   * maxChunkBytes; nothing is retained here, so memory is bounded by what the consumer keeps.
   */
  async *readTensorChunks(
    tensor: TensorInfo | string,
    maxChunkBytes = DEFAULT_CHUNK_BYTES,
    range?: { begin: number; end: number },
  ): AsyncGenerator<Uint8Array> {
    const t = typeof tensor === 'string' ? this.tensor(tensor) : tensor;
    if (t.file !== this.path) throw new CheckpointError(`${this.path}: tensor "${t.name}" belongs to ${t.file}`);
    if (!Number.isSafeInteger(maxChunkBytes) || maxChunkBytes < 1) throw new RangeError(`maxChunkBytes must be a positive integer, got ${maxChunkBytes}`);
    const b = range?.begin ?? 0;
    const e = range?.end ?? t.byteLength;
    if (!(isNonNegInt(b) && isNonNegInt(e) && b <= e && e <= t.byteLength)) {
      throw new RangeError(`${this.path}: tensor "${t.name}": range [${b}, ${e}) outside [0, ${t.byteLength})`);
    }
    const what = `${this.path}: tensor "${t.name}"`;
    for (let o = t.begin + b; o < t.begin + e; ) {
      const n = Math.min(maxChunkBytes, t.begin + e - o);
      yield await this.readRange(o, o + n, what);
      o += n;
    }
  }

  /** Whole tensor in one buffer: for small tensors. */
  async readTensorBytes(tensor: TensorInfo | string): Promise<Uint8Array> {
    const t = typeof tensor === 'string' ? this.tensor(tensor) : tensor;
    return this.readRange(t.begin, t.end, `${this.path}: tensor "${t.name}"`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

export function openSafetensors(path: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(path);
}

export interface TensorToWrite {
  name: string;
  dtype: Dtype;
  shape: number[];
  data: ArrayBufferView;
}

/**
 * Builds the header for `entries` (name, dtype, shape) laid out in the given order. The JSON is
 * padded with spaces to a multiple of 8 so the data section starts 8-aligned.
 */
export function encodeSafetensorsHeader(
  entries: readonly { name: string; dtype: Dtype; shape: readonly number[] }[],
  metadata?: Record<string, string>,
): { header: Uint8Array; offsets: [number, number][]; dataSize: number } {
  const obj: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) obj['__metadata__'] = metadata;
  const offsets: [number, number][] = [];
  let o = 0;
  for (const t of entries) {
    if (!isDtype(t.dtype)) throw new CheckpointError(`tensor "${t.name}": unknown dtype ${JSON.stringify(t.dtype)}`);
    if (t.name === '__metadata__' || Object.hasOwn(obj, t.name)) {
      throw new CheckpointError(`tensor "${t.name}": duplicate or reserved name`);
    }
    const n = shapeElements(t.shape) * DTYPE_SIZES[t.dtype];
    offsets.push([o, o + n]);
    obj[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [o, o + n] };
    o += n;
  }
  const json = new TextEncoder().encode(JSON.stringify(obj));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, offsets, dataSize: o };
}

/**
 * Writes a safetensors file. Tensors are stored by descending element size (stable), so with the
 * 8-aligned data section every tensor offset is aligned to its element size.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  for (const t of tensors) {
    if (!isDtype(t.dtype)) throw new CheckpointError(`${path}: tensor "${t.name}": unknown dtype ${JSON.stringify(t.dtype)}`);
    const want = shapeElements(t.shape) * DTYPE_SIZES[t.dtype];
    if (!t.shape.every(isNonNegInt) || t.data.byteLength !== want) {
      throw new CheckpointError(
        `${path}: tensor "${t.name}": shape ${fmtShape(t.shape)} × ${t.dtype} needs ${want} bytes, data has ${t.data.byteLength}`,
      );
    }
  }
  const ordered = tensors
    .map((t, i) => ({ t, i }))
    .sort((a, b) => DTYPE_SIZES[b.t.dtype] - DTYPE_SIZES[a.t.dtype] || a.i - b.i)
    .map((x) => x.t);
  const { header } = encodeSafetensorsHeader(ordered, metadata);
  const fh = await open(path, 'w');
  try {
    await fh.write(header);
    let pos = header.byteLength;
    for (const t of ordered) {
      const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      let done = 0;
      while (done < bytes.byteLength) {
        const { bytesWritten } = await fh.write(bytes, done, bytes.byteLength - done, pos);
        done += bytesWritten;
        pos += bytesWritten;
      }
    }
  } finally {
    await fh.close();
  }
}
