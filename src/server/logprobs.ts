// The request fields that shape the sampler's distribution (logit_bias, presence_penalty,
// frequency_penalty, repetition_penalty, min_p) and ask for log probabilities, turned into engine
// options; and the logprobs objects of the Chat and (legacy) Completions responses.
import type { LogitsProcessing, TokenLogprob } from '../engine/engine.js';
import type { HarmonyTokenizer } from '../tokenizer/index.js';
import type { AssistantOutput, OutputEvent } from './assistant-output.js';
import { invalidRequest } from './errors.js';

export interface ProcessingFields {
  logit_bias?: Record<string, unknown> | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  repetition_penalty?: number | null;
  min_p?: number | null;
}

/** Engine options for the request's processing fields; OpenAI's ranges, 400s naming the field. */
export function logitsProcessing(b: ProcessingFields, vocab: number): LogitsProcessing {
  const out: LogitsProcessing = {};
  if (b.logit_bias) {
    const bias = new Map<number, number>();
    for (const [key, v] of Object.entries(b.logit_bias)) {
      const id = Number(key);
      if (!/^\d+$/.test(key) || id >= vocab) throw invalidRequest(`logit_bias: "${key}" is not a token id of this model's vocabulary [0, ${vocab})`, 'logit_bias');
      if (typeof v !== 'number' || !Number.isFinite(v) || v < -100 || v > 100) throw invalidRequest(`logit_bias["${key}"]: ${JSON.stringify(v)} is not a number in [-100, 100]`, 'logit_bias');
      if (v !== 0) bias.set(id, v);
    }
    if (bias.size > 1024) throw invalidRequest(`logit_bias: ${bias.size} tokens; at most 1024`, 'logit_bias');
    if (bias.size) out.logitBias = bias;
  }
  if (b.presence_penalty) out.presencePenalty = b.presence_penalty;
  if (b.frequency_penalty) out.frequencyPenalty = b.frequency_penalty;
  if (b.repetition_penalty !== undefined && b.repetition_penalty !== null && b.repetition_penalty !== 1) {
    if (!(b.repetition_penalty > 0)) throw invalidRequest(`repetition_penalty: ${b.repetition_penalty} must be > 0`, 'repetition_penalty');
    out.repetitionPenalty = b.repetition_penalty;
  }
  if (b.min_p) out.minP = b.min_p;
  return out;
}

/** Chat's `logprobs: true` with `top_logprobs` (0..20): the engine's logprobs count, or undefined. */
export function chatLogprobCount(b: { logprobs?: boolean | null; top_logprobs?: number | null }): number | undefined {
  if (b.top_logprobs !== undefined && b.top_logprobs !== null && b.logprobs !== true) {
    throw invalidRequest('top_logprobs needs logprobs set to true', 'top_logprobs');
  }
  return b.logprobs === true ? (b.top_logprobs ?? 0) : undefined;
}

const bytesOf = (tokenizer: HarmonyTokenizer, id: number) => Array.from(tokenizer.tokenBytes(id) ?? new TextEncoder().encode(tokenizer.decode([id])));
const textOf = (tokenizer: HarmonyTokenizer, id: number) => tokenizer.decode([id]);

/** One entry of a chat choice's `logprobs.content`. */
export function chatLogprob(tokenizer: HarmonyTokenizer, id: number, lp: TokenLogprob) {
  return {
    token: textOf(tokenizer, id),
    logprob: lp.logprob,
    bytes: bytesOf(tokenizer, id),
    top_logprobs: lp.top.map((t) => ({ token: textOf(tokenizer, t.id), logprob: t.logprob, bytes: bytesOf(tokenizer, t.id) })),
  };
}

export type ContentLogprob = ReturnType<typeof chatLogprob>;

/**
 * The logprobs of the tokens the client reads as content (chat's `logprobs.content`, Responses'
 * output_text `logprobs`), fed through the turn's AssistantOutput: the plain tokens since the
 * last special one (harmony's <|message|>, <|end|>, ...) are held until the parser turns them
 * into text (it may buffer a few), and dropped when they turn out a header, reasoning or a call.
 */
export class ContentLogprobs {
  /** Every content token's entry so far. */
  readonly content: ContentLogprob[] = [];
  private held: ContentLogprob[] = [];
  private taken = 0;

  constructor(
    private readonly tokenizer: HarmonyTokenizer,
    private readonly output: AssistantOutput,
  ) {}

  /** The output events of a sampled token (and its logprobs, when asked for). */
  push(id: number, lp: TokenLogprob | undefined): OutputEvent[] {
    const special = this.tokenizer.isSpecialToken(id);
    if (lp && !special) this.held.push(chatLogprob(this.tokenizer, id, lp));
    // a special token may flush the text before it, then ends what was held
    const events = this.settle(this.output.push(id));
    if (special) this.held = [];
    return events;
  }

  /** The output's closing events. */
  end(): OutputEvent[] {
    return this.settle(this.output.end());
  }

  /** The entries settled since the last take (a stream chunk's or delta event's). */
  take(): ContentLogprob[] {
    const out = this.content.slice(this.taken);
    this.taken = this.content.length;
    return out;
  }

  private settle(events: OutputEvent[]): OutputEvent[] {
    if ((this.output.inText || events.some((e) => e.type === 'text_end')) && events.some((e) => e.type === 'text_delta')) this.content.push(...this.held.splice(0));
    return events;
  }
}

/** The legacy Completions logprobs object, built token by token. */
export class CompletionLogprobs {
  readonly tokens: string[] = [];
  /** null for the prompt's first token (echo: nothing comes before it). */
  readonly token_logprobs: (number | null)[] = [];
  readonly top_logprobs: (Record<string, number> | null)[] = [];
  readonly text_offset: number[] = [];

  constructor(private readonly tokenizer: HarmonyTokenizer) {}

  /** Adds a token that starts at `offset` characters into the choice's text. */
  push(id: number, lp: TokenLogprob, offset: number): void {
    this.tokens.push(textOf(this.tokenizer, id));
    this.token_logprobs.push(lp.logprob);
    this.top_logprobs.push(Object.fromEntries(lp.top.map((t) => [textOf(this.tokenizer, t.id), t.logprob])));
    this.text_offset.push(offset);
  }

  /**
   * The prompt's tokens (echo), each with its logprob given the tokens before it (the first has
   * none), at offsets counted from the start of the text; returns the prompt text's length.
   */
  pushPrompt(ids: readonly number[], lps: readonly (TokenLogprob | null)[]): number {
    let offset = 0;
    ids.forEach((id, i) => {
      const lp = lps[i];
      const text = textOf(this.tokenizer, id);
      if (lp) this.push(id, lp, offset);
      else {
        this.tokens.push(text);
        this.token_logprobs.push(null);
        this.top_logprobs.push(null);
        this.text_offset.push(offset);
      }
      offset += text.length;
    });
    return offset;
  }

  /** The entries from `from` on (a stream chunk's), as the response object. */
  slice(from = 0) {
    return {
      tokens: this.tokens.slice(from),
      token_logprobs: this.token_logprobs.slice(from),
      top_logprobs: this.top_logprobs.slice(from),
      text_offset: this.text_offset.slice(from),
    };
  }

  get length(): number {
    return this.tokens.length;
  }
}
