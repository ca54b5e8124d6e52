// The compiled schema's types, shared by the compiler (../schema.ts and its modules here) and the
// byte automaton.
import type { Dfa } from './regex.js';

export class UnsupportedSchemaError extends Error {
  override name = 'UnsupportedSchemaError';
  constructor(
    /** The offending keyword (or "$ref", "type", "schema" for malformed values). */
    readonly keyword: string,
    /** JSON pointer of the schema where it occurs. */
    readonly path: string,
    detail?: string,
  ) {
    super(`unsupported JSON schema keyword "${keyword}" at ${path || '#'}${detail ? `: ${detail}` : ''}`);
  }
}

/** Bounds that make every allowed output finite. */
export interface ConstraintBounds {
  /** Most characters (code points; an escape counts as one) in a free string. Default 256. */
  maxStringChars: number;
  /** Most characters in an object key of a free-form object. Default 64. */
  maxKeyChars: number;
  /** Most digits in a number (integer, fraction and exponent together). Default 32. */
  maxNumberDigits: number;
  /** Most items in an array without a smaller maxItems. Default 64. */
  maxItems: number;
  /** Most members of a free-form object. Default 32. */
  maxProperties: number;
  /** Most whitespace bytes in a row between tokens of the JSON. Default 8. */
  maxWhitespace: number;
  /** Most nested objects/arrays. Default 32. */
  maxDepth: number;
}

export const DEFAULT_BOUNDS: ConstraintBounds = {
  maxStringChars: 256,
  maxKeyChars: 64,
  maxNumberDigits: 32,
  maxItems: 64,
  maxProperties: 32,
  maxWhitespace: 8,
  maxDepth: 32,
};

/** A sorted set of byte strings matched byte by byte (enum values, object keys, header text). */
export interface LitSet {
  bytes: Uint8Array[];
  /** What each candidate stands for (property index, name index…), parallel to bytes. */
  info: number[];
}

export interface ObjProp {
  key: string;
  node: SNode;
  required: boolean;
}

/** A string language as a DFA over code points, for pattern and format. */
export interface RxNode {
  k: 'rx';
  dfa: Dfa;
  /** Characters (code points), within maxStringChars. */
  min: number;
  max: number;
  /** Per DFA state: bit L set = some accepting state is exactly L more characters away (L <= max). */
  live: Uint32Array[];
  /**
   * The schema's full language, for oneOf proofs (null where the emitted language is a strict
   * subset we cannot widen, as for formats): the DFA and the schema's own length bounds.
   */
  exact: { dfa: Dfa; min: number; max: number } | null;
}

/**
 * A number in plain decimal notation (no exponent) checked with exact arithmetic: values are
 * integers scaled by 10^scale. Bounds inclusive (null: unbounded), step = multipleOf.
 */
export interface DecNode {
  k: 'dec';
  integer: boolean;
  lo: bigint | null;
  hi: bigint | null;
  step: bigint | null;
  /** Most digits in all (integer and fraction part). */
  digits: number;
  scale: number;
}

export type SNode =
  | { k: 'obj'; props: ObjProp[]; /** for free-form objects (no properties) */ extra: SNode | null; keySets: (LitSet | null)[] }
  | { k: 'arr'; items: SNode; min: number; max: number }
  | { k: 'str'; /** characters (code points; an escape counts as one), within the bounds */ min?: number; max?: number }
  | { k: 'num'; integer: boolean; /** inclusive integer bounds (integers only) */ lo?: number; hi?: number }
  | { k: 'lit'; set: LitSet }
  | { k: 'any'; alts: SNode[] }
  | RxNode
  | DecNode;

export function litSet(entries: { bytes: Uint8Array; info: number }[]): LitSet {
  const seen = new Set<string>();
  const uniq = entries.filter((e) => {
    const k = Buffer.from(e.bytes).toString('latin1');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  uniq.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
  return { bytes: uniq.map((e) => e.bytes), info: uniq.map((e) => e.info) };
}

export function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
