// Prompt lookup (n-gram) proposals: the sequence's last n tokens are looked up in everything it
// has seen (prompt and output), longest n first, and the tokens that followed the latest earlier
// occurrence are proposed. Agent and editing traffic repeats spans of its prompt (a file being
// edited, a tool result quoted back), where this accepts long runs at no model cost.

export interface NgramRange {
  /** Shortest suffix matched. */
  min: number;
  /** Longest suffix matched (tried first). */
  max: number;
}

/**
 * The n-grams of one sequence's tokens, kept up to date as tokens are appended: for each n in
 * [min, max], the position just after the latest occurrence of each n-gram that has a successor.
 */
export class NgramIndex {
  private readonly latest: Map<string, number>[];
  /** Tokens indexed so far. */
  private indexed = 0;

  constructor(readonly range: NgramRange) {
    if (!(Number.isInteger(range.min) && Number.isInteger(range.max) && range.min >= 1 && range.max >= range.min)) {
      throw new Error(`n-gram range ${range.min}..${range.max} must be integers with 1 <= min <= max`);
    }
    this.latest = Array.from({ length: range.max - range.min + 1 }, () => new Map());
  }

  /**
   * Up to k tokens that followed the latest earlier occurrence of the longest suffix of `tokens`
   * (of min..max tokens) seen before; [] when none matches. `tokens` only ever grows (or is
   * replaced by a sequence that starts the same way: a preempted sequence recomputed).
   */
  propose(tokens: readonly number[], k: number): number[] {
    if (tokens.length < this.indexed) this.reset();
    // an n-gram ending at position e - 1 with a successor at e is indexed once token e is known;
    // the suffix itself (ending at the last token) is looked up before it is indexed
    for (let e = Math.max(this.indexed, 1); e < tokens.length; e++) {
      for (let n = this.range.min; n <= this.range.max && n <= e; n++) this.latest[n - this.range.min]!.set(key(tokens, e - n, e), e);
    }
    this.indexed = Math.max(this.indexed, tokens.length);
    if (k <= 0) return [];
    const L = tokens.length;
    for (let n = Math.min(this.range.max, L - 1); n >= this.range.min; n--) {
      const at = this.latest[n - this.range.min]!.get(key(tokens, L - n, L));
      if (at !== undefined) return tokens.slice(at, Math.min(at + k, L)) as number[];
    }
    return [];
  }

  private reset(): void {
    for (const m of this.latest) m.clear();
    this.indexed = 0;
  }
}

function key(tokens: readonly number[], from: number, to: number): string {
  return tokens.slice(from, to).join(',');
}
