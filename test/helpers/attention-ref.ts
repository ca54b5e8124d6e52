// Float64 references for RoPE and attention with sinks (oracle README 5 and 5.2), written from the
// formulas, independent of the kernels' tiling and split plan.
import { ropeConcentration, ropeInvFreq, type RopeConfig } from '../../src/engine/rope.js';

/** cos/sin (with the YaRN concentration) for one position, float64. */
export function ropeAt(cfg: RopeConfig, pos: number): { cos: Float64Array; sin: Float64Array } {
  const inv = ropeInvFreq(cfg);
  const conc = ropeConcentration(cfg);
  const cos = new Float64Array(inv.length);
  const sin = new Float64Array(inv.length);
  for (let j = 0; j < inv.length; j++) {
    cos[j] = Math.cos(pos * inv[j]!) * conc;
    sin[j] = Math.sin(pos * inv[j]!) * conc;
  }
  return { cos, sin };
}

/** Half-split rotation of one head vector x (length d): pairs (j, j + d/2). */
export function rotate(x: ArrayLike<number>, cs: { cos: Float64Array; sin: Float64Array }): Float64Array {
  const half = cs.cos.length;
  const y = new Float64Array(2 * half);
  for (let j = 0; j < half; j++) {
    const x1 = x[j]!;
    const x2 = x[j + half]!;
    y[j] = x1 * cs.cos[j]! - x2 * cs.sin[j]!;
    y[j + half] = x2 * cs.cos[j]! + x1 * cs.sin[j]!;
  }
  return y;
}

export interface AttnShape {
  nq: number;
  nkv: number;
  d: number;
  sliding: boolean;
  window: number;
}

/**
 * Attention output of one query (already rotated, length d) of head h at absolute position pos:
 * keys/values of kv head g = h / (nq/nkv) for visible positions j come from key(j, g) / value(j, g).
 */
export function attendRef(
  s: AttnShape,
  q: ArrayLike<number>,
  h: number,
  pos: number,
  sink: number,
  key: (j: number, g: number) => ArrayLike<number>,
  value: (j: number, g: number) => ArrayLike<number>,
): Float64Array {
  const g = Math.floor(h / (s.nq / s.nkv));
  const first = s.sliding ? Math.max(0, pos - s.window + 1) : 0;
  const scores: number[] = [];
  let mx = sink;
  for (let j = first; j <= pos; j++) {
    const k = key(j, g);
    let dot = 0;
    for (let e = 0; e < s.d; e++) dot += q[e]! * k[e]!;
    const sc = dot / Math.sqrt(s.d);
    scores.push(sc);
    mx = Math.max(mx, sc);
  }
  let denom = Math.exp(sink - mx);
  for (const sc of scores) denom += Math.exp(sc - mx);
  const out = new Float64Array(s.d);
  scores.forEach((sc, i) => {
    const w = Math.exp(sc - mx) / denom;
    const v = value(first + i, g);
    for (let e = 0; e < s.d; e++) out[e]! += w * v[e]!;
  });
  return out;
}
