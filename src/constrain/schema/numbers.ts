// Bounds on non-integer numbers and multipleOf: a DecNode, emitted in plain decimal notation (no
// exponent) and checked digit by digit with exact (BigInt) arithmetic. At most 15 digits: a
// decimal of at most 15 significant digits is the only one of that length rounding to its binary
// double, so a value strictly above a bound (exactly, as decimals) is still strictly above it once
// a validator parses both to doubles; inclusive bounds survive rounding because it is monotonic.
import { UnsupportedSchemaError, type ConstraintBounds, type DecNode } from './core.js';

export const DEC_START = 0;
export const DEC_SIGN = 1;
export const DEC_ZERO = 2;
export const DEC_INT = 3;
export const DEC_DOT = 4;
export const DEC_FRAC = 5;

const MAX_DIGITS = 15;
const TEN = 10n;
const pow10 = (n: number) => TEN ** BigInt(n);

/** x as m * 10^e exactly (the shortest decimal that reads back as x, as a user wrote it). */
function decimal(x: number): { m: bigint; e: number } {
  const r = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/.exec(String(x))!;
  const frac = r[3] ?? '';
  return { m: BigInt(`${r[1]}${r[2]}${frac}`), e: Number(r[4] ?? 0) - frac.length };
}

const floorDiv = (a: bigint, b: bigint) => (a >= 0n ? a / b : -((-a + b - 1n) / b));
const ceilDiv = (a: bigint, b: bigint) => -floorDiv(-a, b);
const gcd = (a: bigint, b: bigint): bigint => (b ? gcd(b, a % b) : a < 0n ? -a : a);

/** x scaled by 10^scale, rounded up (down) to the grid of emitted values. */
function scaled(x: number, scale: number, up: boolean): bigint {
  const { m, e } = decimal(x);
  const k = e + scale;
  if (k >= 0) return m * pow10(k);
  return up ? ceilDiv(m, pow10(-k)) : floorDiv(m, pow10(-k));
}

/**
 * The DecNode for a number or integer schema with bounds (numbers) or multipleOf (either), or
 * null where the plain number automaton already does (no bound, or an integer without multipleOf).
 */
export function compileDecimal(s: Record<string, unknown>, integer: boolean, path: string, bounds: ConstraintBounds): DecNode | null {
  const num = (key: string): number | undefined => {
    const v = s[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new UnsupportedSchemaError(key, path, 'must be a finite number');
    return v;
  };
  const [min, xmin, max, xmax, mult] = ['minimum', 'exclusiveMinimum', 'maximum', 'exclusiveMaximum', 'multipleOf'].map(num);
  if (mult === undefined && (integer || [min, xmin, max, xmax].every((b) => b === undefined))) return null;
  const digits = Math.min(bounds.maxNumberDigits, MAX_DIGITS);
  const scale = integer ? 0 : digits - 1;
  let lo: bigint | null = null;
  let hi: bigint | null = null;
  const raise = (v: bigint) => (lo = lo === null || v > lo ? v : lo);
  const lower = (v: bigint) => (hi = hi === null || v < hi ? v : hi);
  if (min !== undefined) raise(scaled(min, scale, true));
  if (xmin !== undefined) raise(scaled(xmin, scale, false) + 1n);
  if (max !== undefined) lower(scaled(max, scale, false));
  if (xmax !== undefined) lower(scaled(xmax, scale, true) - 1n);
  let step: bigint | null = null;
  if (mult !== undefined) {
    if (mult <= 0) throw new UnsupportedSchemaError('multipleOf', path, 'must be greater than 0');
    // m = p/q in lowest terms. Only q a power of two keeps m, its multiples and their quotients
    // exact in binary floating point, where most validators check multipleOf; for 0.1 they
    // disagree with each other (0.3 / 0.1 is 2.9999999999999996), so no output could be trusted.
    const { m, e } = decimal(mult);
    let p = e >= 0 ? m * pow10(e) : m;
    let q = e >= 0 ? 1n : pow10(-e);
    const g = gcd(p, q);
    p /= g;
    q /= g;
    const twos = q.toString(2).length - 1;
    if (q !== 1n << BigInt(twos)) throw new UnsupportedSchemaError('multipleOf', path, `${mult} is not exact in binary floating point (only integers and dyadic fractions such as 0.5 or 0.25 are)`);
    if (integer) step = p;
    else {
      if (twos > scale) throw new UnsupportedSchemaError('multipleOf', path, `${mult} needs more than ${scale} fraction digits`);
      step = (p * pow10(scale)) / q;
      // keep k * p below 2^53 so every multiple is a double exactly
      const limit = ((1n << 53n) / q) * pow10(scale);
      raise(-limit);
      lower(limit);
    }
  }
  const node: DecNode = { k: 'dec', integer, lo, hi, step, digits, scale };
  if (!decViable(node, DEC_START, 0, 0, 0, 0)) {
    const kw = mult !== undefined ? 'multipleOf' : min !== undefined ? 'minimum' : xmin !== undefined ? 'exclusiveMinimum' : max !== undefined ? 'maximum' : 'exclusiveMaximum';
    throw new UnsupportedSchemaError(kw, path, `no ${integer ? 'integer' : 'number'} of at most ${digits} digits (no exponent) is in range`);
  }
  return node;
}

/** Whether the (magnitude) grid {A, A+g, …, B} holds an in-range multiple of the step. */
function fits(node: DecNode, neg: boolean, a: bigint, b: bigint, g: bigint): boolean {
  let lo = neg ? (node.hi === null ? null : -node.hi) : node.lo;
  const hi = neg ? (node.lo === null ? null : -node.lo) : node.hi;
  if (lo === null || lo < a) lo = a;
  const top = hi === null || hi > b ? b : hi;
  const unit = node.step ? (g * node.step) / gcd(g, node.step) : g;
  return ceilDiv(lo, unit) * unit <= top;
}

/**
 * Whether a number in range extends the prefix: phase, digits so far (t), fraction digits (nf),
 * sign, and the digits as an integer (v).
 */
export function decViable(node: DecNode, phase: number, t: number, nf: number, neg: number, v: number): boolean {
  const { digits: D, scale: S } = node;
  if (phase === DEC_START || phase === DEC_SIGN) {
    for (let d = 0; d <= 9; d++) if (decViable(node, d ? DEC_INT : DEC_ZERO, 1, 0, neg, d)) return true;
    return phase === DEC_START && decViable(node, DEC_SIGN, 0, 0, 1, 0);
  }
  const I = BigInt(v);
  const n = neg === 1;
  if (phase === DEC_FRAC) {
    const r = D - t;
    const x = I * pow10(S - nf);
    const g = pow10(S - nf - r);
    return fits(node, n, x, x + pow10(S - nf) - g, g);
  }
  if (phase === DEC_DOT) {
    const g = pow10(S - (D - t));
    return fits(node, n, I * pow10(S), (I + 1n) * pow10(S) - g, g);
  }
  const more = phase === DEC_ZERO ? 0 : D - t;
  for (let j = 0; j <= more; j++) {
    const f = node.integer ? 0 : D - t - j;
    const g = pow10(S - f);
    if (fits(node, n, I * pow10(j + S), (I + 1n) * pow10(j + S) - g, g)) return true;
  }
  return false;
}

/** Whether the number may end here (a complete literal, in range, a multiple of the step). */
export function decCanEnd(node: DecNode, phase: number, nf: number, neg: number, v: number): boolean {
  if (phase !== DEC_ZERO && phase !== DEC_INT && phase !== DEC_FRAC) return false;
  const x = BigInt(v) * pow10(node.scale - nf);
  const value = neg ? -x : x;
  if (node.lo !== null && value < node.lo) return false;
  if (node.hi !== null && value > node.hi) return false;
  return node.step === null || x % node.step === 0n;
}
