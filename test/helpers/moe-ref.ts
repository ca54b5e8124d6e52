// Float64 references for the MoE kernels (oracle README section 5) and random MXFP4 experts.
import { dequantMxfp4 } from '../../src/model/mxfp4.js';
import { gaussian } from './random.js';

export interface Mxfp4Tensor {
  /** [E][rows][cols/32][16] checkpoint bytes. */
  blocks: Uint8Array;
  /** [E][rows][cols/32] E8M0 bytes. */
  scales: Uint8Array;
  /** Dequantized [E][rows][cols], exact. */
  values: Float32Array;
}

/** Random nibbles (all 16 codes, -0 included) and scale bytes drawn from [sLo, sHi]. */
export function randomMxfp4(r: () => number, experts: number, rows: number, cols: number, sLo = 118, sHi = 126): Mxfp4Tensor {
  const nb = (experts * rows * cols) / 32;
  const blocks = new Uint8Array(nb * 16);
  for (let i = 0; i < blocks.length; i++) blocks[i] = Math.floor(r() * 256);
  const scales = new Uint8Array(nb);
  for (let i = 0; i < nb; i++) scales[i] = sLo + Math.floor(r() * (sHi - sLo + 1));
  return { blocks, scales, values: dequantMxfp4(blocks, scales, experts * rows, cols) };
}

export interface Routing {
  /** [T][k] expert ids. */
  ids: Uint32Array;
  /** [T][k] weights as stored (f32). */
  weights: Float32Array;
  /** u32 [T][k][2] as the GPU kernels read it. */
  packed: Uint32Array;
}

export function packRouting(ids: ArrayLike<number>, weights: ArrayLike<number>): Uint32Array {
  const packed = new Uint32Array(ids.length * 2);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let j = 0; j < ids.length; j++) {
    packed[2 * j] = ids[j]!;
    f[0] = weights[j]!;
    packed[2 * j + 1] = u[0]!;
  }
  return packed;
}

/** Random router choices: k distinct experts per token, positive weights summing to ~1. */
export function randomRouting(r: () => number, T: number, E: number, k: number): Routing {
  const ids = new Uint32Array(T * k);
  const weights = new Float32Array(T * k);
  for (let t = 0; t < T; t++) {
    const chosen = new Set<number>();
    while (chosen.size < k) chosen.add(Math.floor(r() * E));
    const logits = [...chosen].map(() => gaussian(r));
    const m = Math.max(...logits);
    const ex = logits.map((l) => Math.exp(l - m));
    const sum = ex.reduce((a, b) => a + b, 0);
    [...chosen].forEach((e, j) => {
      ids[t * k + j] = e;
      weights[t * k + j] = ex[j]! / sum;
    });
  }
  return { ids, weights, packed: packRouting(ids, weights) };
}

/** Top-k (descending, ties to the lower index) and softmax over the k winners, in float64. */
export function topkRef(logits: Float32Array, T: number, E: number, k: number): { ids: number[]; weights: number[] } {
  const ids: number[] = [];
  const weights: number[] = [];
  for (let t = 0; t < T; t++) {
    const row = Array.from(logits.subarray(t * E, (t + 1) * E));
    const order = row.map((_, i) => i).sort((a, b) => (row[b]! - row[a]! || a - b));
    const top = order.slice(0, k);
    const m = row[top[0]!]!;
    const ex = top.map((i) => Math.exp(row[i]! - m));
    const sum = ex.reduce((a, b) => a + b, 0);
    top.forEach((i, j) => {
      ids.push(i);
      weights.push(ex[j]! / sum);
    });
  }
  return { ids, weights };
}

export interface UpRef {
  /** [T][k][I] */
  h: Float64Array;
  /** Same without the swiglu clamp (to show the test would catch a missing clamp). */
  hNoClamp: Float64Array;
  gateClamped: number;
  upClamped: number;
}

export function moeUpRef(
  xn: Float32Array, routing: Routing, w1: Float32Array, b1: Float32Array,
  T: number, H: number, I: number, k: number, limit: number,
): UpRef {
  const h = new Float64Array(T * k * I);
  const hNoClamp = new Float64Array(T * k * I);
  let gateClamped = 0;
  let upClamped = 0;
  const act = (g: number, u: number) => g * (1 / (1 + Math.exp(-1.702 * g))) * (u + 1);
  for (let t = 0; t < T; t++) {
    for (let s = 0; s < k; s++) {
      const e = routing.ids[t * k + s]!;
      for (let i = 0; i < I; i++) {
        const pre = [0, 0];
        for (let q = 0; q < 2; q++) {
          const row = (e * 2 * I + 2 * i + q) * H;
          let acc = b1[e * 2 * I + 2 * i + q]!;
          for (let c = 0; c < H; c++) acc += w1[row + c]! * xn[t * H + c]!;
          pre[q] = acc;
        }
        const [g, u] = pre as [number, number];
        if (g > limit) gateClamped++;
        if (Math.abs(u) > limit) upClamped++;
        const o = (t * k + s) * I + i;
        h[o] = act(Math.min(g, limit), Math.min(Math.max(u, -limit), limit));
        hNoClamp[o] = act(g, u);
      }
    }
  }
  return { h, hNoClamp, gateClamped, upClamped };
}

export function moeDownRef(
  x0: Float32Array, hin: ArrayLike<number>, routing: Routing, w2: Float32Array, b2: Float32Array,
  T: number, H: number, I: number, k: number,
): Float64Array {
  const x = Float64Array.from(x0);
  for (let t = 0; t < T; t++) {
    for (let s = 0; s < k; s++) {
      const e = routing.ids[t * k + s]!;
      const w = routing.weights[t * k + s]!;
      for (let r = 0; r < H; r++) {
        let acc = b2[e * H + r]!;
        const row = (e * H + r) * I;
        for (let c = 0; c < I; c++) acc += w2[row + c]! * hin[(t * k + s) * I + c]!;
        x[t * H + r]! += w * acc;
      }
    }
  }
  return x;
}
