// Float64 references for the sampler's tests: the exact softmax, Pearson's statistic against it
// with its bound, and the Gumbel-max draw of shaders/lib/gumbel.wgsl recomputed on the CPU.

/** lowbias32 (shaders/lib/hash.wgsl). */
export function hash32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** lib/gumbel gumbel_stream. */
export function gumbelStream(seed: number, counter: number): number {
  return hash32(hash32((seed ^ 0x2545f491) >>> 0) ^ ((Math.imul(counter, 0x9e3779b9) + 0x7f4a7c15) >>> 0));
}

/** The Gumbel noise -log(-log(u)) of token id in float64 (lib/gumbel gumbel_exp, then -log). */
export function gumbelNoise(stream: number, id: number): number {
  const h = hash32(stream ^ hash32((Math.imul(id, 0x85ebca6b) + 0xc2b2ae35) >>> 0));
  const s = Math.min((h + 0.5) / 2 ** 32, 1 - 2 ** -24);
  return -Math.log(-Math.log1p(-s));
}

/** The float64 Gumbel-max draw over `logits` at temperature t, and the gap between its best two keys. */
export function gumbelArgmax(logits: ArrayLike<number>, t: number, seed: number, counter: number): { id: number; gap: number } {
  const stream = gumbelStream(seed, counter);
  let best = -Infinity;
  let second = -Infinity;
  let id = -1;
  for (let i = 0; i < logits.length; i++) {
    const k = logits[i]! / t + gumbelNoise(stream, i);
    if (k > best) {
      second = best;
      best = k;
      id = i;
    } else if (k > second) {
      second = k;
    }
  }
  return { id, gap: best - second };
}

/** softmax(logits / t) in float64. */
export function softmax64(logits: ArrayLike<number>, t: number): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) m = Math.max(m, logits[i]!);
  const p = Float64Array.from({ length: logits.length }, (_, i) => Math.exp((logits[i]! - m) / t));
  const z = p.reduce((a, b) => a + b, 0);
  return p.map((v) => v / z);
}

/** log softmax(logits) in float64: the logprobs the OpenAI APIs report. */
export function logSoftmax64(logits: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) m = Math.max(m, logits[i]!);
  let s = 0;
  for (let i = 0; i < logits.length; i++) s += Math.exp(logits[i]! - m);
  const lse = m + Math.log(s);
  return Float64Array.from({ length: logits.length }, (_, i) => logits[i]! - lse);
}

/** Wilson-Hilferty approximation of the chi-square quantile with `df` degrees of freedom at normal deviate z. */
export function chiSquareQuantile(df: number, z: number): number {
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

/**
 * Pearson's statistic of `counts` against `p`, the tokens whose expected count is under
 * `minExpected` pooled into one bin (joined to the smallest other bin while it is under that too),
 * so that every bin's count is near normal; with its degrees of freedom.
 */
export function pooledChiSquare(counts: ArrayLike<number>, p: Float64Array, minExpected = 20): { chi2: number; df: number } {
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += counts[i]!;
  const bins: { e: number; n: number }[] = [];
  const rest = { e: 0, n: 0 };
  for (let i = 0; i < p.length; i++) {
    const e = n * p[i]!;
    if (e >= minExpected) bins.push({ e, n: counts[i]! });
    else (rest.e += e), (rest.n += counts[i]!);
  }
  if (rest.e > 0) {
    if (rest.e < minExpected && bins.length) {
      const smallest = bins.reduce((a, b) => (b.e < a.e ? b : a));
      smallest.e += rest.e;
      smallest.n += rest.n;
    } else {
      bins.push(rest);
    }
  }
  const chi2 = bins.reduce((a, b) => a + (b.n - b.e) ** 2 / b.e, 0);
  return { chi2, df: bins.length - 1 };
}

/**
 * Pearson's statistic over the kept tokens (p > 0) grouped by probability (consecutive in that
 * order, each group expecting at least `minExpected` draws), for kept sets too wide and flat for a
 * bin per token; with its degrees of freedom.
 */
export function groupedChiSquare(counts: ArrayLike<number>, p: Float64Array, minExpected = 40): { chi2: number; df: number } {
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += counts[i]!;
  const kept = [...p.keys()].filter((i) => p[i]! > 0).sort((a, b) => p[b]! - p[a]!);
  const groups: { e: number; n: number }[] = [];
  let g = { e: 0, n: 0 };
  for (const i of kept) {
    g.e += n * p[i]!;
    g.n += counts[i]!;
    if (g.e >= minExpected) groups.push(g), (g = { e: 0, n: 0 });
  }
  if (g.e > 0) {
    if (groups.length) (groups.at(-1)!.e += g.e), (groups.at(-1)!.n += g.n);
    else groups.push(g);
  }
  return { chi2: groups.reduce((a, b) => a + (b.n - b.e) ** 2 / b.e, 0), df: groups.length - 1 };
}
