import { expect } from 'vitest';

export interface Diff {
  maxAbs: number;
  at: number;
  nonFinite: number;
}

export function diff(actual: ArrayLike<number>, expected: ArrayLike<number>): Diff {
  expect(actual.length).toBe(expected.length);
  let maxAbs = 0;
  let at = -1;
  let nonFinite = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    if (!Number.isFinite(a)) {
      nonFinite++;
      if (at < 0) at = i;
      continue;
    }
    const d = Math.abs(a - expected[i]!);
    if (d > maxAbs) {
      maxAbs = d;
      at = i;
    }
  }
  return { maxAbs, at, nonFinite };
}

/** |actual - expected| <= atol + rtol * |expected| everywhere, and every element written (finite). */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol = 0,
  what = 'values',
): Diff {
  const d = diff(actual, expected);
  expect(d.nonFinite, `${what}: ${d.nonFinite} non-finite (unwritten?) elements, first at ${d.at}`).toBe(0);
  for (let i = 0; i < expected.length; i++) {
    const tol = atol + rtol * Math.abs(expected[i]!);
    if (!(Math.abs(actual[i]! - expected[i]!) <= tol)) {
      throw new Error(
        `${what}: element ${i}: got ${actual[i]}, expected ${expected[i]} (tol ${tol}); max abs err ${d.maxAbs} at ${d.at}`,
      );
    }
  }
  return d;
}
