// o200k_harmony special tokens (ids checked against gpt-tokenizer@4.0.0, openai/harmony and the
// gpt-oss docs; see ../shared/harmony/special-tokens.json).

export const HARMONY_TOKENS = {
  startOfText: 199998,
  endOfText: 199999,
  return: 200002,
  constrain: 200003,
  channel: 200005,
  start: 200006,
  end: 200007,
  message: 200008,
  call: 200012,
} as const;

export const HARMONY_TOKEN_TEXT = {
  return: '<|return|>',
  constrain: '<|constrain|>',
  channel: '<|channel|>',
  start: '<|start|>',
  end: '<|end|>',
  message: '<|message|>',
  call: '<|call|>',
} as const;

/**
 * Sampling stops on these: `<|return|>` (answer done) and `<|call|>` (tool call). Never on
 * `<|end|>`, which the model writes between its own messages.
 */
export const HARMONY_STOP_TOKEN_IDS: readonly number[] = [HARMONY_TOKENS.return, HARMONY_TOKENS.call];

/** What the parser accepts as the end of a message. */
export const HARMONY_MESSAGE_END_TOKEN_IDS: readonly number[] = [
  HARMONY_TOKENS.return,
  HARMONY_TOKENS.call,
  HARMONY_TOKENS.end,
];

/** Number of ids the model knows: 199998 BPE ranks, then special tokens up to 201087. */
export const O200K_HARMONY_VOCAB_SIZE = 201088;

/** Every special token of o200k_harmony as in the gpt-oss checkpoints' tokenizer.json. */
export function o200kHarmonySpecialTokens(): Array<{ id: number; content: string }> {
  const named = new Map<number, string>([
    [199998, '<|startoftext|>'],
    [199999, '<|endoftext|>'],
    [200002, '<|return|>'],
    [200003, '<|constrain|>'],
    [200005, '<|channel|>'],
    [200006, '<|start|>'],
    [200007, '<|end|>'],
    [200008, '<|message|>'],
    [200012, '<|call|>'],
    // The checkpoints (and gpt-tokenizer) name 200018 after o200k_base's <|endofprompt|>.
    [200018, '<|endofprompt|>'],
  ]);
  const out: Array<{ id: number; content: string }> = [];
  for (let id = 199998; id < O200K_HARMONY_VOCAB_SIZE; id++) {
    out.push({ id, content: named.get(id) ?? `<|reserved_${id}|>` });
  }
  return out;
}
