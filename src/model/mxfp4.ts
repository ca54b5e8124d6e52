// CPU reference decoders: MXFP4 expert weights (OCP microscaling FP4 with E8M0 block scales) and
// bfloat16. Used by tests and as the ground truth for the GPU decoders; not on the hot path.

/** FP4 (E2M1) value of each nibble; nibble 8 is −0. */
export const FP4_VALUES: readonly number[] = [
  +0, +0.5, +1, +1.5, +2, +3, +4, +6, -0, -0.5, -1, -1.5, -2, -3, -4, -6,
];

/** Elements per MXFP4 block (one shared scale byte, 16 data bytes). */
export const MXFP4_BLOCK = 32;

// 2^(s − 127) for every scale byte. Like the reference (torch.ldexp) 255 is treated as 2^128, not
// NaN: values are formed in f64 and rounded to f32 once, so every result equals ldexp's exactly.
const SCALE_POW2 = Float64Array.from({ length: 256 }, (_, s) => 2 ** (s - 127));

/**
 * Dequantizes W [rows, cols] from blocks [rows, cols/32, 16] and scales [rows, cols/32].
 * W[r, 32g + 2j] = FP4[blocks[r,g,j] & 15] · 2^(scales[r,g] − 127), W[r, 32g + 2j + 1] uses the high
 * nibble. Leading dimensions (experts) fold into `rows`, since the layout is C-contiguous.
 */
export function dequantMxfp4(blocks: Uint8Array, scales: Uint8Array, rows: number, cols: number): Float32Array {
  if (cols % MXFP4_BLOCK !== 0) throw new RangeError(`MXFP4 cols ${cols} is not a multiple of ${MXFP4_BLOCK}`);
  const groups = cols / MXFP4_BLOCK;
  if (blocks.byteLength !== rows * groups * 16) {
    throw new RangeError(`MXFP4 blocks hold ${blocks.byteLength} bytes, expected rows·cols/2 = ${rows * groups * 16}`);
  }
  if (scales.byteLength !== rows * groups) {
    throw new RangeError(`MXFP4 scales hold ${scales.byteLength} bytes, expected rows·cols/32 = ${rows * groups}`);
  }
  const out = new Float32Array(rows * cols);
  for (let rg = 0; rg < rows * groups; rg++) {
    const s = SCALE_POW2[scales[rg]!]!;
    const src = rg * 16;
    const dst = rg * MXFP4_BLOCK;
    for (let j = 0; j < 16; j++) {
      const b = blocks[src + j]!;
      out[dst + 2 * j] = FP4_VALUES[b & 0x0f]! * s;
      out[dst + 2 * j + 1] = FP4_VALUES[b >> 4]! * s;
    }
  }
  return out;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** One bf16 bit pattern → its value. */
export function bf16ToF32(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0]!;
}

/** Rounds to the nearest bf16 (ties to even; NaN stays a quiet NaN). Returns the bit pattern. */
export function f32ToBf16(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0]!;
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x007fffff) !== 0) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** bf16 bit patterns (u16 values, or little-endian bytes of any alignment) → Float32Array. */
export function bf16ToF32Array(src: Uint16Array | Uint8Array): Float32Array {
  let u16: Uint16Array;
  if (src instanceof Uint16Array) {
    u16 = src;
  } else {
    if (src.byteLength % 2 !== 0) throw new RangeError(`bf16 data has odd byte length ${src.byteLength}`);
    // A Uint16Array view needs 2-byte alignment; copy when the bytes sit at an odd offset.
    u16 = src.byteOffset % 2 === 0
      ? new Uint16Array(src.buffer, src.byteOffset, src.byteLength / 2)
      : new Uint16Array(src.slice().buffer);
  }
  const out = new Float32Array(u16.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < u16.length; i++) bits[i] = u16[i]! << 16;
  return out;
}

/** Float32 values → bf16 bit patterns (round to nearest even). */
export function f32ToBf16Array(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToBf16(src[i]!);
  return out;
}
