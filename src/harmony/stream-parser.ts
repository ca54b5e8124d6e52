// Streaming parser for model output (../shared/harmony/README.md section 7): takes sampled token
// ids one at a time and emits reasoning, content and tool-call events as soon as they are known.
//
// States, as in openai/harmony: ExpectStart -<|start|>-> Header -<|message|>-> Content
// -(<|end|> <|return|> <|call|>)-> ExpectStart. In strict mode malformed output throws
// HarmonyParseError, like the library. In the default non-strict mode the parser never throws: it
// applies the library's recovery (a stop token in the first header turns the header words into
// content) and degrades every other slip to plain content, recording a warning. Two rules keep
// what it emits streaming and free of format tokens whatever the model samples:
// - A header is held back only while it can still be one: at most 3 words after the channel
//   (role, recipient, content type: parseHeader takes no more), 256 characters, and no special
//   token but <|channel|> and <|constrain|>. Past that it is text, and streams as content from
//   then on (a model that never writes <|message|> would otherwise send its whole answer at the
//   end).
// - Special tokens never become text: inside a message they are dropped (<|start|> closes the
//   message, as a missing <|end|>), and recovered header text leaves them out.

import { randomBytes } from 'node:crypto';
import type { HarmonyTokenizer } from '../tokenizer/harmony-tokenizer.js';
import { HARMONY_TOKENS, HARMONY_TOKEN_TEXT } from '../tokenizer/special-tokens.js';
import type { Utf8StreamDecoder } from '../tokenizer/utf8.js';
import { HarmonyParseError } from './errors.js';
import { ROLES, type ParsedMessage, type Role } from './types.js';

export type Terminator = 'return' | 'call' | 'end';

/** What a finished message means for a Chat Completions `finish_reason`. */
export type FinishReason = 'stop' | 'tool_calls';

export type MessageHeader = Omit<ParsedMessage, 'content'>;

export type HarmonyEvent =
  /** A header was parsed; deltas of this message follow. */
  | { type: 'message_start'; header: MessageHeader }
  /** Text of an assistant analysis message (chain of thought). */
  | { type: 'reasoning_delta'; text: string }
  /** Text of an assistant message for the user: final, a commentary preamble, or no channel. */
  | { type: 'content_delta'; text: string; channel?: string }
  /** An assistant message addressed to a tool. `name` drops a `functions.` prefix. */
  | { type: 'tool_call_start'; index: number; id: string; name: string; recipient: string; channel?: string; contentType?: string }
  | { type: 'tool_call_delta'; index: number; id: string; text: string }
  | { type: 'tool_call_end'; index: number; id: string; name: string; arguments: string }
  /** terminator null: the stream ended inside the message. */
  | { type: 'message_end'; message: ParsedMessage; terminator: Terminator | null; finishReason: FinishReason | null }
  | { type: 'warning'; message: string };

export interface StreamParserOptions {
  /**
   * Role of the first message when the prompt already wrote `<|start|>assistant` (the usual case,
   * and the default); null when the stream starts with `<|start|>`.
   */
  role?: Role | null;
  /** Throw HarmonyParseError on malformed output (openai/harmony's default). Default false. */
  strict?: boolean;
  /** Ids for tool calls; default `call_` + 24 random hex digits. */
  makeToolCallId?: () => string;
}

type MessageKind = 'reasoning' | 'content' | 'tool_call' | 'other';

interface OpenMessage {
  header: MessageHeader;
  kind: MessageKind;
  text: string;
  decoder: Utf8StreamDecoder;
  toolCall?: { index: number; id: string; name: string };
}

/** Non-strict mode: a header longer than this is text (a real one is well under 100 characters). */
const MAX_HEADER_CHARS = 256;
/** Words a header may have after its channel: role, recipient, content type. */
const MAX_HEADER_WORDS = 3;

const TERMINATORS = new Map<number, Terminator>([
  [HARMONY_TOKENS.return, 'return'],
  [HARMONY_TOKENS.call, 'call'],
  [HARMONY_TOKENS.end, 'end'],
]);

export class HarmonyStreamParser {
  /** Every finished message, in order. */
  readonly messages: ParsedMessage[] = [];
  readonly warnings: string[] = [];
  private state: 'start' | 'header' | 'content';
  /** Role already known for the message whose header is being read. */
  private knownRole: Role | null;
  private headerTokens: number[] = [];
  private open: OpenMessage | null = null;
  private toolCalls = 0;
  private lastFinish: FinishReason | null = null;
  private readonly strict: boolean;
  private readonly makeToolCallId: () => string;

  constructor(
    private readonly tokenizer: HarmonyTokenizer,
    options: StreamParserOptions = {},
  ) {
    this.knownRole = options.role === undefined ? 'assistant' : options.role;
    this.state = this.knownRole === null ? 'start' : 'header';
    this.strict = options.strict ?? false;
    this.makeToolCallId = options.makeToolCallId ?? (() => `call_${randomBytes(12).toString('hex')}`);
  }

  /** Finish reason of the last message that ended in `<|return|>` or `<|call|>`, if any. */
  get finishReason(): FinishReason | null {
    return this.lastFinish;
  }

  /** Text of the message being read so far ('' outside a message body). */
  get currentContent(): string {
    return this.open?.text ?? '';
  }

  get currentHeader(): MessageHeader | null {
    return this.open?.header ?? null;
  }

  /** Consumes one sampled token. */
  push(token: number): HarmonyEvent[] {
    const events: HarmonyEvent[] = [];
    this.consume(token, events);
    return events;
  }

  /** End of the stream (a stop token, a length limit, or the end of a token list). */
  end(): HarmonyEvent[] {
    const events: HarmonyEvent[] = [];
    if (this.state === 'header') {
      if (this.strict) throw new HarmonyParseError('unexpected end of stream while reading a message header');
      this.warn(events, 'stream ended inside a message header; its text is kept as content');
      this.recoverHeader(null, events);
    } else if (this.state === 'content') {
      this.closeMessage(null, events);
    }
    return events;
  }

  private consume(token: number, events: HarmonyEvent[]): void {
    switch (this.state) {
      case 'start':
        if (token === HARMONY_TOKENS.start) {
          this.state = 'header';
          this.headerTokens = [];
          return;
        }
        if (this.strict) throw new HarmonyParseError(`unexpected token ${token} while expecting <|start|>`);
        if (TERMINATORS.has(token)) {
          this.warn(events, `stray end token ${token} between messages ignored`);
          return;
        }
        // The model forgot <|start|>: read what follows as an assistant header.
        this.warn(events, `token ${token} where <|start|> was expected; reading an assistant message`);
        this.state = 'header';
        this.knownRole = 'assistant';
        this.headerTokens = [];
        this.consume(token, events);
        return;

      case 'header':
        if (token === HARMONY_TOKENS.message) {
          this.openMessage(events);
        } else if (!this.strict && TERMINATORS.has(token)) {
          // The library's non-strict recovery: the model forgot <|message|>.
          this.warn(events, 'end token inside a message header (missing <|message|>); header words kept as content');
          this.recoverHeader(TERMINATORS.get(token)!, events);
        } else {
          this.headerTokens.push(token);
          if (!this.strict && !this.couldBeHeader()) this.headerAsContent(events);
        }
        return;

      case 'content': {
        const terminator = TERMINATORS.get(token);
        if (terminator !== undefined) {
          this.closeMessage(terminator, events);
          return;
        }
        if (!this.strict && this.tokenizer.isSpecialToken(token)) {
          if (token === HARMONY_TOKENS.start) {
            this.warn(events, '<|start|> inside a message (missing <|end|>); the message ends there');
            this.closeMessage(null, events);
            this.consume(token, events);
          } else {
            this.warn(events, `special token ${token} inside a message dropped`);
          }
          return;
        }
        const open = this.open!;
        this.emitText(open, open.decoder.push(token), events);
        return;
      }
    }
  }

  private openMessage(events: HarmonyEvent[]): void {
    const text = this.decodeHeader();
    let header: MessageHeader;
    try {
      header = parseHeader(text, this.knownRole);
    } catch (e) {
      if (this.strict) throw e;
      // Degrade to a plain message, keeping the channel when there is one.
      this.warn(events, `${(e as Error).message}; reading the message as plain content`);
      const channel = extractChannel(text).channel;
      header = { role: this.knownRole ?? 'assistant', ...(channel ? { channel } : {}) };
    }
    this.startMessage(header, events);
  }

  private startMessage(header: MessageHeader, events: HarmonyEvent[]): OpenMessage {
    this.state = 'content';
    this.knownRole = null;
    this.headerTokens = [];
    const open: OpenMessage = { header, kind: classify(header), text: '', decoder: this.tokenizer.createStreamDecoder() };
    this.open = open;
    events.push({ type: 'message_start', header });
    if (open.kind === 'tool_call') {
      const recipient = header.recipient!;
      const name = recipient.startsWith('functions.') ? recipient.slice('functions.'.length) : recipient;
      open.toolCall = { index: this.toolCalls++, id: this.makeToolCallId(), name };
      events.push({
        type: 'tool_call_start',
        index: open.toolCall.index,
        id: open.toolCall.id,
        name,
        recipient,
        ...(header.channel !== undefined ? { channel: header.channel } : {}),
        ...(header.contentType !== undefined ? { contentType: header.contentType } : {}),
      });
    }
    return open;
  }

  private emitText(open: OpenMessage, text: string, events: HarmonyEvent[]): void {
    if (text === '') return;
    open.text += text;
    switch (open.kind) {
      case 'reasoning':
        events.push({ type: 'reasoning_delta', text });
        break;
      case 'content':
        events.push({ type: 'content_delta', text, ...(open.header.channel !== undefined ? { channel: open.header.channel } : {}) });
        break;
      case 'tool_call':
        events.push({ type: 'tool_call_delta', index: open.toolCall!.index, id: open.toolCall!.id, text });
        break;
      case 'other':
        break;
    }
  }

  private closeMessage(terminator: Terminator | null, events: HarmonyEvent[]): void {
    const open = this.open!;
    this.emitText(open, open.decoder.flush(), events);
    const message: ParsedMessage = { ...open.header, content: open.text };
    this.messages.push(message);
    if (open.toolCall !== undefined) {
      events.push({ type: 'tool_call_end', index: open.toolCall.index, id: open.toolCall.id, name: open.toolCall.name, arguments: open.text });
    }
    const finishReason = terminator === 'return' ? 'stop' : terminator === 'call' ? 'tool_calls' : null;
    if (finishReason !== null) this.lastFinish = finishReason;
    events.push({ type: 'message_end', message, terminator, finishReason });
    this.open = null;
    this.state = 'start';
  }

  /** A header that never got its <|message|>: its words (after role and channel) become content. */
  private recoverHeader(terminator: Terminator | null, events: HarmonyEvent[]): void {
    const tokens = this.headerTokens;
    const knownRole = this.knownRole;
    this.state = 'start';
    this.knownRole = null;
    this.headerTokens = [];
    if (tokens.length === 0) return;
    const header = this.headerAsText(tokens);
    const { channel, rest } = extractChannel(header.text + header.decoder.flush());
    const parts = splitHeaderWords(rest);
    const role = knownRole ?? (isRole(parts[0]) ? parts[0] : 'assistant');
    if (parts[0] === role) parts.shift();
    const open = this.startMessage({ role, ...(channel ? { channel } : {}) }, events);
    this.emitText(open, parts.join(' '), events);
    this.closeMessage(terminator, events);
  }

  /** Non-strict: whether the header tokens read so far can still be a header (see the top). */
  private couldBeHeader(): boolean {
    const last = this.headerTokens.at(-1)!;
    if (last !== HARMONY_TOKENS.channel && last !== HARMONY_TOKENS.constrain && this.tokenizer.isSpecialToken(last)) return false;
    const text = this.decodeHeader();
    if (text.length > MAX_HEADER_CHARS) return false;
    const rest = extractChannel(text).rest.replaceAll(HARMONY_TOKEN_TEXT.constrain, ` ${HARMONY_TOKEN_TEXT.constrain}`);
    return splitHeaderWords(rest).length <= MAX_HEADER_WORDS;
  }

  /**
   * Non-strict: header tokens that cannot be a header start a plain message instead (role and
   * channel taken as recoverHeader takes them); what follows streams as its content.
   */
  private headerAsContent(events: HarmonyEvent[]): void {
    this.warn(events, 'text where a message header was expected (no <|message|>); read as content');
    const knownRole = this.knownRole;
    const { text, decoder } = this.headerAsText(this.headerTokens);
    const extracted = extractChannel(text);
    let rest = extracted.rest.trimStart();
    const first = splitHeaderWords(rest)[0];
    const role = knownRole ?? (isRole(first) ? first : 'assistant');
    if (first === role) rest = rest.slice(role.length).trimStart();
    const open = this.startMessage({ role, ...(extracted.channel ? { channel: extracted.channel } : {}) }, events);
    // The header's decoder may hold the first bytes of a character the next token completes.
    open.decoder = decoder;
    this.emitText(open, rest, events);
  }

  /** Header tokens as text with the special tokens left out, but the first <|channel|> (it marks the channel). */
  private headerAsText(tokens: readonly number[]): { text: string; decoder: Utf8StreamDecoder } {
    const decoder = this.tokenizer.createStreamDecoder();
    let text = '';
    let channel = false;
    for (const t of tokens) {
      if (t === HARMONY_TOKENS.channel && !channel) {
        text += HARMONY_TOKEN_TEXT.channel;
        channel = true;
      } else if (!this.tokenizer.isSpecialToken(t)) {
        text += decoder.push(t);
      }
    }
    return { text, decoder };
  }

  private decodeHeader(tokens: readonly number[] = this.headerTokens): string {
    if (this.strict) {
      try {
        return this.tokenizer.decode(tokens, { fatal: true });
      } catch {
        throw new HarmonyParseError('could not decode message header');
      }
    }
    const decoder = this.tokenizer.createStreamDecoder();
    let text = '';
    for (const t of tokens) text += decoder.push(t);
    return text + decoder.flush();
  }

  private warn(events: HarmonyEvent[], message: string): void {
    this.warnings.push(message);
    events.push({ type: 'warning', message });
  }
}

function isRole(word: string | undefined): word is Role {
  return word !== undefined && (ROLES as readonly string[]).includes(word);
}

function classify(header: MessageHeader): MessageKind {
  if (header.role !== 'assistant') return 'other';
  if (header.recipient !== undefined && header.recipient !== 'all') return 'tool_call';
  return header.channel === 'analysis' ? 'reasoning' : 'content';
}

/** Header text split the way Rust's split_ascii_whitespace does. */
function splitHeaderWords(text: string): string[] {
  return text.split(/[ \t\n\f\r]+/).filter((w) => w !== '');
}

/** Takes `<|channel|>name` out of a header; the name ends at whitespace or `<`. */
function extractChannel(text: string): { channel?: string; rest: string } {
  const at = text.indexOf(HARMONY_TOKEN_TEXT.channel);
  if (at < 0) return { rest: text };
  const after = text.slice(at + HARMONY_TOKEN_TEXT.channel.length);
  const m = /[\s<]/u.exec(after);
  const end = m === null ? after.length : m.index;
  return { channel: after.slice(0, end), rest: text.slice(0, at) + after.slice(end) };
}

/**
 * openai/harmony's header rules (README section 7.2): channel, then role (or a tool name), then
 * recipient and content type. A recipient that starts with `<|` is a content type (structured
 * output writes `<|channel|>final <|constrain|>json`). Throws on malformed headers.
 */
export function parseHeader(text: string, knownRole: Role | null): MessageHeader {
  const extracted = extractChannel(text);
  if (extracted.channel === '') throw new HarmonyParseError('channel marker present but no channel value found in header');
  let rest = extracted.rest.trim();
  if (rest.includes(HARMONY_TOKEN_TEXT.constrain)) rest = rest.replaceAll(HARMONY_TOKEN_TEXT.constrain, ` ${HARMONY_TOKEN_TEXT.constrain}`).trim();
  const parts = splitHeaderWords(rest);

  let role: Role;
  let name: string | undefined;
  if (knownRole !== null) {
    role = knownRole;
  } else {
    const first = parts[0];
    if (first === undefined) throw new HarmonyParseError('message header did not contain a role');
    if (isRole(first)) {
      role = first;
      if (role === 'tool') name = first;
    } else if (parts.length > 1 || first.startsWith('to=')) {
      // An unknown first word followed by more header is a tool writing, e.g. `browser.search to=assistant`.
      parts.shift();
      role = 'tool';
      name = first;
    } else {
      throw new HarmonyParseError(`Unknown role: ${first}`);
    }
  }
  if (parts[0] === role) parts.shift();

  let recipient: string | undefined;
  let contentType: string | undefined;
  const count = parts.length;
  const last = parts.pop();
  if (last !== undefined) {
    if (last.startsWith('to=')) {
      recipient = last.slice(3);
    } else if (count === 1) {
      recipient = last;
    } else {
      contentType = last;
      const raw = parts.pop()!;
      recipient = raw.startsWith('to=') ? raw.slice(3) : raw;
    }
  }
  if (parts.length > 0) throw new HarmonyParseError(`unexpected tokens remaining in message header: ${JSON.stringify(parts.join(' '))}`);
  if (recipient?.startsWith('<|')) {
    contentType ??= recipient;
    recipient = undefined;
  }
  return {
    role,
    ...(name !== undefined ? { name } : {}),
    ...(extracted.channel !== undefined ? { channel: extracted.channel } : {}),
    ...(recipient !== undefined ? { recipient } : {}),
    ...(contentType !== undefined ? { contentType } : {}),
  };
}

/** Parses a whole token list (e.g. a finished completion). */
export function parseHarmonyTokens(
  tokenizer: HarmonyTokenizer,
  tokens: readonly number[],
  options: StreamParserOptions = {},
): { messages: ParsedMessage[]; warnings: string[]; finishReason: FinishReason | null } {
  const parser = new HarmonyStreamParser(tokenizer, options);
  for (const t of tokens) parser.push(t);
  parser.end();
  return { messages: parser.messages, warnings: parser.warnings, finishReason: parser.finishReason };
}
