// Where proposed tokens come from. A proposer only guesses: the target model verifies every guess
// in its own step (speculator.ts), so a bad guess costs time, never output.
//
// Both proposers here are deterministic (an n-gram lookup, a draft model's greedy tokens). For a
// deterministic proposal x speculative sampling's rule (accept with probability min(1, p(x)/q(x)),
// q = 1 at x; on rejection draw from p without x, renormalised) is the same as drawing y from the
// target's p at that position and accepting x when y = x, keeping y otherwise: that is what the
// step does, with each position's draw seeded as it would be without speculation. The output
// distribution, and a seeded run's tokens, are those of plain decoding.
//
// Seam for EAGLE-style heads (not built): such a head reads the target's last hidden states. It
// would be a Proposer whose propose() also receives, per sequence, the final-norm activations of
// the verified positions, which the step keeps in its activation buffers (act.x before the
// unembedding) and would copy out for the rows that ask, as logits rows are today; its own small
// forward then runs on the GPU before the next step.
import type { GenerateOptions, GenerateResult } from '../api.js';
import { NgramIndex, type NgramRange } from './ngram.js';

/** What a proposer is asked for one sequence: its tokens so far and how many to propose. */
export interface ProposalRequest {
  /** The sequence (stable across its steps: a proposer may keep state per sequence). */
  key: object;
  tokens: readonly number[];
  k: number;
}

export interface Proposer {
  readonly name: string;
  /** Up to `k` proposed next tokens for each request (fewer or none when it has no guess). */
  propose(reqs: readonly ProposalRequest[]): number[][] | Promise<number[][]>;
  /** Frees what it holds (a draft model's engine); the target engine calls it as it is destroyed. */
  destroy?(): void;
}

/** Prompt lookup: each sequence keeps an n-gram index of its own tokens. */
export class NgramProposer implements Proposer {
  readonly name = 'ngram';
  private readonly indexes = new WeakMap<object, NgramIndex>();

  constructor(readonly range: NgramRange = { min: 1, max: 4 }) {
    new NgramIndex(range); // checks the range
  }

  propose(reqs: readonly ProposalRequest[]): number[][] {
    return reqs.map((r) => {
      let ix = this.indexes.get(r.key);
      if (!ix) this.indexes.set(r.key, (ix = new NgramIndex(this.range)));
      return ix.propose(r.tokens, r.k);
    });
  }
}

/** The part of an engine a draft proposer uses. */
export interface DraftModel {
  generate(prompt: readonly number[], o: GenerateOptions): Promise<GenerateResult>;
  readonly contextLength: number;
}

/**
 * A smaller model with the same tokenizer (gpt-oss-20b for 120b) runs `k` greedy steps per
 * sequence, all sequences batched in its own engine. Each call sends the whole sequence; the
 * draft engine's prefix cache holds its earlier blocks, so a call computes the tokens since the
 * last full page and its k decode steps: the same number of draft steps as an incremental draft,
 * with a slightly larger first one.
 */
export class DraftProposer implements Proposer {
  readonly name = 'draft';
  destroy?: () => void;

  constructor(
    private readonly draft: DraftModel,
    private readonly log: (m: string) => void = () => {},
  ) {}

  async propose(reqs: readonly ProposalRequest[]): Promise<number[][]> {
    return Promise.all(
      reqs.map(async (r) => {
        if (r.k <= 0 || r.tokens.length + r.k > this.draft.contextLength) return [];
        try {
          return (await this.draft.generate(r.tokens, { maxTokens: r.k, temperature: 0 })).tokens;
        } catch (e) {
          // a draft failure costs the proposals of this step, not the target's request
          this.log(`draft model: ${(e as Error).message}`);
          return [];
        }
      }),
    );
  }
}
