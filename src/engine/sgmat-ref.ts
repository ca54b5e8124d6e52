// Float64 references for the subgroup-matrix GEMMs, with the operands rounded to f16 exactly as the
// kernels stage them (round to nearest even), and the error bound each output may show:
//   products of f16 operands are exact in f32, so the only error left is the f32 accumulation of K
//   terms (and the bias / residual additions): |got - ref| <= 2^-24 ((K + 2) S + 2 |ref|), with
//   S = sum |a_i b_i| (the classic gamma_K bound, first order). The real tensor cores may align
//   partial sums with fewer guard bits than IEEE f32; the self-check allows 4x that for them.
// Against the f32 kernels (unrounded activations) the f16 rounding of each activation adds up to
// 2^-11 |a_i| (2^-10 allowed, for a device that rounds either way), and weights below 2^-14 (bf16
// values that land on f16's subnormal grid) up to 2^-25 each.
import { bf16ToF32, f32ToBf16 } from '../model/mxfp4.js';

/** x rounded to the nearest f16 (ties to even), as a number; overflow gives +-Infinity. */
export function f16Round(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Infinity;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, -14) - 10);
  const q = a / ulp;
  const fl = Math.floor(q);
  const d = q - fl;
  const r = d > 0.5 || (d === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  return Math.sign(x) * r * ulp;
}

/** The value of IEEE half bits. */
export function f16BitsValue(b: number): number {
  const sign = b & 0x8000 ? -1 : 1;
  const e = (b >> 10) & 0x1f;
  const m = b & 0x3ff;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (e ? (1 + m / 1024) * 2 ** (e - 15) : m * 2 ** -24);
}

export function f16RoundAll(a: ArrayLike<number>): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f16Round(a[i]!);
  return out;
}

/** Seeded uniform [0, 1) (mulberry32). */
export function seeded(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function normals(r: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r()) * scale;
  return out;
}

/** bf16 weights: the bit patterns (pairs packed little-endian) and their values. */
export function bf16Weights(r: () => number, n: number, scale: number): { bits: Uint16Array; values: Float64Array } {
  const v = normals(r, n, scale);
  const bits = new Uint16Array(n);
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    bits[i] = f32ToBf16(v[i]!);
    values[i] = bf16ToF32(bits[i]!);
  }
  return { bits, values };
}

/** Reference values and per-element allowed error of C = A B^T (+ add). */
export interface GemmRef {
  value: Float64Array;
  /** The f32-accumulation bound on the f16-rounded operands (see the file comment). */
  tol: Float64Array;
  /** The bound against the f32 kernel on unrounded activations. */
  tolF32: Float64Array;
}

/**
 * rows x n outputs of sum_k f16(a[r][k]) f16(b[c][k]) + add(r, c), a row-major [rows][K] (a row
 * source function, for gathered rows), b [n][K].
 */
export function gemmRef(
  aRow: (r: number) => ArrayLike<number>,
  rows: number,
  b: ArrayLike<number>,
  n: number,
  K: number,
  add: (r: number, c: number) => number = () => 0,
): GemmRef {
  const bh = f16RoundAll(b);
  const value = new Float64Array(rows * n);
  const tol = new Float64Array(rows * n);
  const tolF32 = new Float64Array(rows * n);
  const ah = new Float64Array(K);
  for (let r = 0; r < rows; r++) {
    const a = aRow(r);
    let absA = 0;
    for (let k = 0; k < K; k++) {
      ah[k] = f16Round(a[k]!);
      absA += Math.abs(a[k]!);
    }
    for (let c = 0; c < n; c++) {
      let s = 0;
      let abs = 0;
      let absRaw = 0;
      for (let k = 0; k < K; k++) {
        const p = ah[k]! * bh[c * K + k]!;
        s += p;
        abs += Math.abs(p);
        absRaw += Math.abs(a[k]! * b[c * K + k]!);
      }
      const v = s + add(r, c);
      const o = r * n + c;
      value[o] = v;
      tol[o] = 2 ** -24 * ((K + 2) * abs + 2 * Math.abs(v));
      tolF32[o] = (2 ** -10 + 2 * (K + 2) * 2 ** -24) * absRaw + 2 ** -25 * absA + 2 ** -22 * Math.abs(v);
    }
  }
  return { value, tol, tolF32 };
}

/** gpt-oss SwiGLU in float64. */
export function swiglu64(g: number, u: number, limit: number): number {
  const gc = Math.min(g, limit);
  const uc = Math.min(Math.max(u, -limit), limit);
  return (gc / (1 + Math.exp(-1.702 * gc))) * (uc + 1);
}

/**
 * Allowed error of SwiGLU(g, u) given errors tg, tu of its inputs: its slope in g is below 1.1
 * (limit + 1) and in u below limit; plus the f32 evaluation of exp and the products.
 */
export function swigluTol(h: number, tg: number, tu: number, limit: number): number {
  return 1.1 * (limit + 1) * tg + limit * tu + 4e-6 * Math.abs(h) + 1e-7;
}

/** Largest |got - want| / tol (<= 1 passes), and how many elements are not finite. */
export function worst(got: ArrayLike<number>, want: ArrayLike<number>, tol: ArrayLike<number>, scale = 1): { ratio: number; at: number; nonFinite: number } {
  let ratio = 0;
  let at = -1;
  let nonFinite = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    if (!Number.isFinite(g)) {
      nonFinite++;
      continue;
    }
    const q = Math.abs(g - want[i]!) / (scale * tol[i]! + 1e-30);
    if (q > ratio) {
      ratio = q;
      at = i;
    }
  }
  return { ratio, at, nonFinite };
}
