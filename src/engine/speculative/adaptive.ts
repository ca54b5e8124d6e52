// How many tokens a sequence proposes at its next step, from how its recent proposals fared:
// verifying k proposals costs a step of k + 1 tokens (about one decode step's weight bytes, more
// arithmetic) and, with a draft model, k draft steps; and a step that verifies is never planned
// ahead of the previous one's output. So a sequence whose proposals keep failing (or whose
// lookups keep finding nothing) stops proposing and runs as without speculation, probing again
// every few steps.

/** Steps between probes of a sequence that stopped proposing. */
export const PROBE_EVERY = 8;
/** Below this acceptance (EMA of accepted / proposed) a sequence stops proposing. */
export const MIN_RATE = 0.15;
/** Lookups in a row that found nothing to propose before a sequence stops asking. */
export const MAX_MISSES = 3;
const EMA = 0.3;

export class AdaptiveK {
  /** Running estimate of the fraction of proposals accepted. */
  rate = 0.6;
  /** Decode steps since proposals were last verified. */
  private idle = 0;
  /** Lookups in a row that had nothing to propose. */
  private misses = 0;

  constructor(readonly max: number) {}

  /** Whether the sequence asks for proposals before its next step (then that step is not planned ahead). */
  get active(): boolean {
    return (this.rate >= MIN_RATE && this.misses < MAX_MISSES) || this.idle >= PROBE_EVERY;
  }

  /** Proposals to ask for: fewer as acceptance falls, one for a probe. */
  next(): number {
    if (this.rate < MIN_RATE) return 1;
    return Math.max(1, Math.min(this.max, Math.round(this.max * this.rate)));
  }

  /** A lookup found `n` tokens to propose. */
  found(n: number): void {
    if (n > 0) {
      this.misses = 0;
    } else {
      this.misses++;
      this.idle = 0; // a probe that found nothing waits for the next
    }
  }

  /** After a decode step of the sequence: `proposed` tokens verified (0: none), `accepted` of them kept. */
  observe(proposed: number, accepted: number): void {
    if (!proposed) {
      this.idle++;
      return;
    }
    this.idle = 0;
    this.rate = (1 - EMA) * this.rate + EMA * (accepted / proposed);
  }
}
