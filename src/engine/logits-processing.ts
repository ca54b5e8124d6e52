// Host side of the logits processing (ops/logits-process.ts): which sampled rows get a ProcRow,
// and each row's bias / penalty entries, one per distinct token: what OpenAI's logit_bias,
// presence_penalty and frequency_penalty and vLLM's repetition_penalty and min_p ask for.
import type { GenerateOptions } from './api.js';
import { MAX_TOP_LOGPROBS, NO_LOGPROBS } from './ops/context.js';

/** Entries one row may hold: the bias first, then the output's tokens, then the prompt's, newest first. */
export const ROW_ENTRIES_MAX = 4096;

export interface RowProcessing {
  /** ProcRow.top */
  top: number;
  minP: number;
  /** (id, add, rep) per distinct token. */
  ids: number[];
  add: number[];
  rep: number[];
  /** Whether the logits change (the row then takes the sampler's full path). */
  changes: boolean;
}

/** Whether generation needs the host's view of every token before each step (penalties do). */
export function needsTokenHistory(o: GenerateOptions): boolean {
  return !!o.presencePenalty || !!o.frequencyPenalty || (o.repetitionPenalty !== undefined && o.repetitionPenalty !== 1);
}

/** The processing of one sampled row, or null when it has none. `tokens`: prompt then output, all known. */
export function rowProcessing(o: GenerateOptions, tokens: readonly number[], promptLength: number, limit = ROW_ENTRIES_MAX): RowProcessing | null {
  const top = o.logprobs === undefined ? NO_LOGPROBS : Math.max(0, Math.min(MAX_TOP_LOGPROBS, Math.floor(o.logprobs)));
  const minP = o.minP ?? 0;
  const rep = o.repetitionPenalty ?? 1;
  const presence = o.presencePenalty ?? 0;
  const frequency = o.frequencyPenalty ?? 0;
  const entry = new Map<number, { add: number; rep: number }>();
  const at = (id: number) => {
    let e = entry.get(id);
    if (!e) {
      if (entry.size >= limit) return null;
      e = { add: 0, rep: 1 };
      entry.set(id, e);
    }
    return e;
  };
  for (const [id, bias] of o.logitBias ?? []) {
    const e = bias !== 0 ? at(id) : null;
    if (e) e.add += bias;
  }
  if (presence || frequency) {
    const counts = new Map<number, number>();
    for (let i = tokens.length - 1; i >= promptLength; i--) counts.set(tokens[i]!, (counts.get(tokens[i]!) ?? 0) + 1);
    for (const [id, c] of counts) {
      const e = at(id);
      if (e) e.add -= presence + frequency * c;
    }
  }
  if (rep !== 1) {
    for (let i = tokens.length - 1; i >= 0; i--) {
      const e = at(tokens[i]!);
      if (e) e.rep = rep;
    }
  }
  const changes = entry.size > 0 || minP > 0;
  if (!changes && top === NO_LOGPROBS) return null;
  const ids = [...entry.keys()];
  return { top, minP, ids, add: ids.map((id) => entry.get(id)!.add), rep: ids.map((id) => entry.get(id)!.rep), changes };
}
