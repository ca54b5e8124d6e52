// The host side of the logits processing: one entry per distinct token with the bias, presence
// and frequency penalties on the output's tokens and the repetition penalty on prompt and output,
// the entry limit (bias first, then the newest tokens), and rows that need no processing.
import { describe, expect, it } from 'vitest';
import { needsTokenHistory, rowProcessing } from '../../src/engine/logits-processing.js';
import { NO_LOGPROBS } from '../../src/engine/ops/context.js';

describe('rowProcessing', () => {
  it('merges bias and penalties per distinct token', () => {
    // prompt [5, 6], output [7, 7, 5]
    const p = rowProcessing({ maxTokens: 9, logitBias: new Map([[9, 2], [7, -1]]), presencePenalty: 0.5, frequencyPenalty: 0.25, repetitionPenalty: 1.5 }, [5, 6, 7, 7, 5], 2)!;
    const by = new Map(p.ids.map((id, j) => [id, { add: p.add[j], rep: p.rep[j] }]));
    expect(by.get(9)).toEqual({ add: 2, rep: 1 });
    expect(by.get(7)).toEqual({ add: -1 - 0.5 - 0.25 * 2, rep: 1.5 });
    expect(by.get(5)).toEqual({ add: -0.5 - 0.25, rep: 1.5 });
    // a prompt-only token gets the repetition penalty, not presence or frequency
    expect(by.get(6)).toEqual({ add: 0, rep: 1.5 });
    expect(p.changes).toBe(true);
    expect(p.top).toBe(NO_LOGPROBS);
    expect(needsTokenHistory({ maxTokens: 1, repetitionPenalty: 1.5 })).toBe(true);
    expect(needsTokenHistory({ maxTokens: 1, logitBias: new Map([[1, 1]]) })).toBe(false);
  });

  it('keeps at most `limit` entries, the bias first, and never fails when full', () => {
    const bias = new Map([[1, 1], [2, 1], [3, 1], [4, 1], [5, 1]]);
    expect(rowProcessing({ maxTokens: 1, logitBias: bias }, [9], 1, 3)!.ids).toEqual([1, 2, 3]);
    // no room left: nothing to change, so no row
    expect(rowProcessing({ maxTokens: 1, logitBias: bias }, [9], 1, 0)).toBeNull();
    // the newest tokens first once the bias is in
    expect(rowProcessing({ maxTokens: 1, logitBias: new Map([[1, 1]]), repetitionPenalty: 2 }, [10, 11, 12, 13], 2, 3)!.ids).toEqual([1, 13, 12]);
  });

  it('a row with only logprobs changes nothing; a row with nothing is null', () => {
    expect(rowProcessing({ maxTokens: 1, logprobs: 3 }, [1], 1)).toEqual({ top: 3, minP: 0, ids: [], add: [], rep: [], changes: false });
    expect(rowProcessing({ maxTokens: 1, logprobs: 99 }, [1], 1)!.top).toBe(20);
    expect(rowProcessing({ maxTokens: 1, minP: 0.1 }, [1], 1)!.changes).toBe(true);
    expect(rowProcessing({ maxTokens: 1, temperature: 1 }, [1], 1)).toBeNull();
  });
});
