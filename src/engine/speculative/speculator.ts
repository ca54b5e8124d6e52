// Speculative decoding's host side: before a step that is not planned ahead, the sequences that
// speculate get proposals (their Seq.draft, which the scheduler turns into extra positions of
// their decode entry); after the step, what was accepted updates each one's adaptive k and the
// counters /metrics and bench report. The step itself only draws each position (step-inputs.ts)
// and sequences.ts keeps the agreeing prefix.
import { SPEC_RATE_BUCKETS, type SpeculativeStats } from '../api.js';
import type { Seq, StepPlan } from '../scheduler.js';
import type { SeqRequest } from '../sequences.js';
import { AdaptiveK } from './adaptive.js';
import type { Proposer } from './proposers.js';

export interface SpeculatorOptions {
  proposer: Proposer;
  /** Most tokens proposed per sequence and step (K). */
  tokens: number;
}

type EngineSeq = Seq<SeqRequest>;

export const zeroSpeculativeStats = (K: number): SpeculativeStats => ({ method: '', proposed: 0, accepted: 0, verifications: 0, entries: 0, yielded: 0, acceptedHistogram: new Array<number>(K + 1).fill(0), rateBuckets: SPEC_RATE_BUCKETS.map(() => 0), rateSum: 0 });

/** Checks K, the most tokens proposed per sequence and step. */
export function checkSpecTokens(k: number): void {
  if (!(Number.isInteger(k) && k >= 1 && k <= MAX_SPEC_TOKENS)) throw new Error(`speculative tokens ${k} must be an integer in [1, ${MAX_SPEC_TOKENS}]`);
}

export const MAX_SPEC_TOKENS = 16;

export class Speculator {
  readonly stats: SpeculativeStats;
  private readonly state = new WeakMap<EngineSeq, AdaptiveK>();

  constructor(readonly o: SpeculatorOptions) {
    checkSpecTokens(o.tokens);
    this.stats = { ...zeroSpeculativeStats(o.tokens), method: o.proposer.name };
  }

  /** Whether a sequence speculates at all: a plain decoding one (no constraint, no logits to the host) that did not opt out. */
  private speculates(seq: EngineSeq): boolean {
    const r = seq.request;
    const o = r.opts;
    return seq.generates && o.speculative !== false && !o.constraint && !o.onLogits && !r.prefillLogits;
  }

  /** Whether it may get proposals now: decoding, with its last token's id on the host. */
  private eligible(seq: EngineSeq): boolean {
    return seq.state === 'running' && !seq.prefilling && seq.pending === 0 && this.speculates(seq);
  }

  private adaptive(seq: EngineSeq): AdaptiveK {
    let a = this.state.get(seq);
    if (!a) this.state.set(seq, (a = new AdaptiveK(this.o.tokens)));
    return a;
  }

  /** Whether some running sequence will ask for proposals before its next step (no run-ahead then). */
  wantsHost(running: readonly EngineSeq[]): boolean {
    // asked while the previous step runs: a token of it may still be pending
    return running.some((s) => !s.prefilling && this.speculates(s) && this.adaptive(s).active);
  }

  /** Sets the proposals of the sequences that speculate at the next step. */
  async propose(running: readonly EngineSeq[]): Promise<void> {
    const seqs = running.filter((s) => this.eligible(s) && this.adaptive(s).active);
    if (!seqs.length) return;
    const lengths = seqs.map((s) => s.tokens.length);
    const reqs = seqs.map((s) => ({ key: s, tokens: s.tokens, k: Math.min(this.adaptive(s).next(), s.maxTokens - s.generated - 1) }));
    const out = await this.o.proposer.propose(reqs);
    seqs.forEach((s, i) => {
      const draft = (out[i] ?? []).slice(0, Math.max(0, reqs[i]!.k));
      this.adaptive(s).found(draft.length);
      // still decoding from the same token (nothing ended or moved it while the proposer ran)
      if (this.eligible(s) && s.tokens.length === lengths[i]) s.draft = draft;
    });
  }

  /** After a step's output was handed out: acceptance per verifying entry. */
  settled(plan: StepPlan<SeqRequest>): void {
    for (const e of plan.entries) {
      if (!e.sample) continue;
      const k = e.draft.length;
      this.state.get(e.seq)?.observe(k, e.accepted);
      if (e.pos0 >= e.seq.promptLength) {
        this.stats.entries++;
        this.stats.yielded += 1 + e.accepted;
      }
      if (!k) continue;
      this.stats.proposed += k;
      this.stats.accepted += e.accepted;
      this.stats.verifications++;
      this.stats.acceptedHistogram[e.accepted]!++;
      const rate = e.accepted / k;
      this.stats.rateSum += rate;
      SPEC_RATE_BUCKETS.forEach((le, i) => {
        if (rate <= le) this.stats.rateBuckets[i]!++;
      });
    }
  }
}
