// Sampled tokens -> what an API response is made of: reasoning, user-visible text and function
// calls, each with start / delta / end events, shared by /v1/chat/completions and /v1/responses.
//
// It sits on HarmonyStreamParser in non-strict mode, which never throws: whatever the model
// samples (a random-weight model emits arbitrary ids, special tokens included) ends up as one of
// these events or is dropped, so responses stay well formed. Stop strings apply to the text.
import { HarmonyStreamParser, type HarmonyEvent, type MessageHeader } from '../harmony/index.js';
import type { HarmonyTokenizer } from '../tokenizer/index.js';
import { StopStringMatcher } from './stop-strings.js';

export type OutputEvent =
  | { type: 'reasoning_start' }
  | { type: 'reasoning_delta'; text: string }
  | { type: 'reasoning_end'; text: string }
  | { type: 'text_start' }
  | { type: 'text_delta'; text: string }
  | { type: 'text_end'; text: string }
  | { type: 'tool_start'; index: number; id: string; name: string }
  | { type: 'tool_delta'; index: number; text: string }
  | { type: 'tool_end'; index: number; id: string; name: string; arguments: string };

export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface AssistantOutputOptions {
  tokenizer: HarmonyTokenizer;
  /**
   * Declared tool names (functions by name, namespace members as `ns.name`); null when tool
   * calls are not wanted (no tools, or tool_choice none). With tools, a call to anything else
   * (`repo_browser.open_file`, `python`, an undeclared function) is still a tool call, under its
   * full name, so the client can answer it with an error; without, it becomes text.
   */
  tools: ReadonlySet<string> | null;
  /** Stop strings, matched in the text. */
  stop?: readonly string[];
  /** Where the parser's recoveries from malformed output are reported. */
  warn?: (message: string) => void;
}

type Open =
  | { kind: 'reasoning'; text: string }
  | { kind: 'text'; text: string; stop: StopStringMatcher }
  | { kind: 'tool'; index: number; id: string; name: string; text: string }
  | { kind: 'ignored' };

/** How a call no tool can take is written as text: the recipient, then what the model sent it. */
export const callAsText = (recipient: string): string => `[${recipient}] `;

export class AssistantOutput {
  private readonly parser: HarmonyStreamParser;
  private open: Open | null = null;
  private finished = false;
  /** Tokens sampled for analysis messages (header, content and end token). */
  reasoningTokens = 0;
  /** Tokens since the last message ended: the header being read. */
  private headerTokens = 0;
  /** A stop string matched: generation should end. */
  stoppedByString = false;
  readonly toolCalls: ToolCall[] = [];

  constructor(private readonly o: AssistantOutputOptions) {
    this.parser = new HarmonyStreamParser(o.tokenizer, { role: 'assistant', strict: false });
  }

  /** Inside a message the client reads as content (its body, not its header or end token). */
  get inText(): boolean {
    return this.open?.kind === 'text' && !this.finished;
  }

  /** The model ended a message with <|call|> (asked for a tool run). */
  get endedWithCall(): boolean {
    return this.parser.finishReason === 'tool_calls';
  }

  push(token: number): OutputEvent[] {
    if (this.finished) return [];
    // Reasoning tokens: an analysis message's header, content and end token.
    if (this.open?.kind === 'reasoning') this.reasoningTokens++;
    else if (this.open === null) this.headerTokens++;
    const out: OutputEvent[] = [];
    for (const e of this.parser.push(token)) this.apply(e, out);
    return out;
  }

  /** End of generation: closes whatever message is open. */
  end(): OutputEvent[] {
    if (this.finished) return [];
    const out: OutputEvent[] = [];
    for (const e of this.parser.end()) this.apply(e, out);
    this.finished = true;
    return out;
  }

  private apply(e: HarmonyEvent, out: OutputEvent[]): void {
    switch (e.type) {
      case 'warning':
        this.o.warn?.(e.message);
        return;
      case 'message_start':
        this.start(e.header, out);
        return;
      case 'tool_call_start':
        // The parser numbers every addressed message; ours counts only the calls we surface.
        if (this.open?.kind === 'tool') {
          this.open.id = e.id;
          out.push({ type: 'tool_start', index: this.open.index, id: e.id, name: this.open.name });
        }
        return;
      case 'reasoning_delta':
        if (this.open?.kind === 'reasoning') {
          this.open.text += e.text;
          out.push({ type: 'reasoning_delta', text: e.text });
        }
        return;
      case 'content_delta':
        if (this.open?.kind === 'text') this.text(this.open, e.text, out);
        return;
      case 'tool_call_delta':
        // a call shown as text (no tools in the request)
        if (this.open?.kind === 'text') this.text(this.open, e.text, out);
        if (this.open?.kind === 'tool') {
          this.open.text += e.text;
          out.push({ type: 'tool_delta', index: this.open.index, text: e.text });
        }
        return;
      case 'tool_call_end':
        return;
      case 'message_end':
        this.close(out);
        return;
    }
  }

  private start(header: MessageHeader, out: OutputEvent[]): void {
    const headerTokens = this.headerTokens;
    this.close(out);
    if (header.role !== 'assistant') {
      this.open = { kind: 'ignored' };
      return;
    }
    const recipient = header.recipient;
    if (recipient !== undefined && recipient !== 'all') {
      const name = this.functionName(recipient);
      if (name === null) {
        // No tools to call: the turn must not come back empty, so the call is shown as text.
        this.o.warn?.(`the model addressed ${JSON.stringify(recipient)} and the request has no tools; returned as text`);
        const open: Open = { kind: 'text', text: '', stop: new StopStringMatcher(this.o.stop ?? []) };
        this.open = open;
        out.push({ type: 'text_start' });
        this.text(open, callAsText(recipient), out);
        return;
      }
      // id is filled in by the parser's tool_call_start, which follows at once.
      this.open = { kind: 'tool', index: this.toolCalls.length, id: '', name, text: '' };
      this.toolCalls.push({ id: '', name, arguments: '' });
      return;
    }
    if (header.channel === 'analysis') {
      this.reasoningTokens += headerTokens;
      this.open = { kind: 'reasoning', text: '' };
      out.push({ type: 'reasoning_start' });
      return;
    }
    this.open = { kind: 'text', text: '', stop: new StopStringMatcher(this.o.stop ?? []) };
    out.push({ type: 'text_start' });
  }

  /**
   * The name a call is returned under: NAME for `functions.NAME` (any name, as vLLM does) and for
   * a bare declared NAME, else the recipient in full (`ns.tool`); null when there are no tools.
   */
  private functionName(recipient: string): string | null {
    const tools = this.o.tools;
    if (tools === null) return null;
    if (recipient.startsWith('functions.') && recipient.length > 'functions.'.length) {
      const name = recipient.slice('functions.'.length);
      if (tools.has(name) || !tools.has(recipient)) return name;
    }
    if (!tools.has(recipient)) this.o.warn?.(`the model called ${JSON.stringify(recipient)}, which the request did not declare; returned as a tool call under that name`);
    return recipient;
  }

  private text(open: Extract<Open, { kind: 'text' }>, delta: string, out: OutputEvent[]): void {
    const emit = open.stop.push(delta);
    if (emit !== '') {
      open.text += emit;
      out.push({ type: 'text_delta', text: emit });
    }
    if (open.stop.stopped) {
      this.stoppedByString = true;
      this.close(out);
      this.finished = true;
    }
  }

  private close(out: OutputEvent[]): void {
    const open = this.open;
    this.open = null;
    this.headerTokens = 0;
    if (!open) return;
    switch (open.kind) {
      case 'reasoning':
        out.push({ type: 'reasoning_end', text: open.text });
        return;
      case 'text': {
        const rest = open.stop.flush();
        if (rest !== '') {
          open.text += rest;
          out.push({ type: 'text_delta', text: rest });
        }
        out.push({ type: 'text_end', text: open.text });
        return;
      }
      case 'tool': {
        const call = this.toolCalls[open.index]!;
        call.id = open.id;
        call.arguments = open.text;
        out.push({ type: 'tool_end', index: open.index, id: open.id, name: open.name, arguments: open.text });
        return;
      }
      case 'ignored':
        return;
    }
  }
}
