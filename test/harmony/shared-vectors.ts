// Reading ../shared/harmony: the vectors' inputs (index.json) turned into our message types, the
// expected texts and token ids, and the token streams of the parse cases.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { HarmonyTokenizer } from '../../src/tokenizer/index.js';
import type {
  DeveloperContent,
  HarmonyMessage,
  ParsedMessage,
  ReasoningEffort,
  Role,
  SystemContent,
  ToolNamespace,
} from '../../src/harmony/index.js';
import { sharedDir } from '../tokenizer/test-tokenizer.js';

export const harmonyDir = path.join(sharedDir, 'harmony');

interface IndexNamespace {
  name: string;
  description: string | null;
  tools: Array<{ name: string; description: string; parameters: unknown }>;
}

interface IndexContent {
  type: 'system_content' | 'developer_content';
  model_identity?: string | null;
  reasoning_effort?: ReasoningEffort | null;
  knowledge_cutoff?: string | null;
  conversation_start_date?: string | null;
  channel_config?: { valid_channels: string[]; channel_required: boolean } | null;
  instructions?: string | null;
  tools?: Record<string, IndexNamespace> | null;
}

export interface IndexMessage {
  role: Role;
  name?: string;
  recipient?: string;
  channel?: string;
  content_type?: string;
  content: string | IndexContent;
}

export type Segment = { text: string } | { ordinary_text: string } | { tokens: number[] } | { eos: true };

export interface ParseSpec {
  role: Role | null;
  strict: boolean;
  expected: Record<string, unknown>;
  expected_messages_derived?: IndexMessage[];
  text?: string;
  tokens?: number[];
  segments?: Segment[];
}

export interface Vector {
  id: string;
  file: string | null;
  kind: string;
  input?: { messages: IndexMessage[]; next_turn_role?: Role; auto_drop_analysis?: boolean | null };
  parse?: ParseSpec;
  also?: Record<string, unknown>;
  expected?: Record<string, unknown>;
}

export const index = JSON.parse(readFileSync(path.join(harmonyDir, 'vectors', 'index.json'), 'utf8')) as { vectors: Vector[] };

const expectedTokens = JSON.parse(readFileSync(path.join(harmonyDir, 'derived', 'expected-tokens.gpt-tokenizer.json'), 'utf8')) as {
  vectors: Record<string, { tokens: number[] }>;
};

/** A vector file's text: CRLF to LF, trailing whitespace stripped (README section 11). */
export function vectorText(file: string): string {
  return readFileSync(path.join(harmonyDir, 'vectors', file), 'utf8').replaceAll('\r\n', '\n').trimEnd();
}

export function vectorTokens(file: string): number[] | undefined {
  return expectedTokens.vectors[file]?.tokens;
}

function namespaces(tools: Record<string, IndexNamespace> | null | undefined): Record<string, ToolNamespace> | undefined {
  if (tools === null || tools === undefined) return undefined;
  const out: Record<string, ToolNamespace> = {};
  for (const [key, ns] of Object.entries(tools)) {
    out[key] = {
      name: ns.name,
      ...(ns.description !== null ? { description: ns.description } : {}),
      tools: ns.tools.map((t) => ({ name: t.name, description: t.description, ...(t.parameters !== null ? { parameters: t.parameters } : {}) })),
    };
  }
  return out;
}

function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null)) as T;
}

export function toHarmonyMessage(m: IndexMessage): HarmonyMessage {
  let content: HarmonyMessage['content'];
  if (typeof m.content === 'string') {
    content = m.content;
  } else if (m.content.type === 'system_content') {
    const c = m.content;
    content = defined<SystemContent>({
      type: 'system',
      modelIdentity: c.model_identity ?? undefined,
      reasoningEffort: c.reasoning_effort ?? undefined,
      knowledgeCutoff: c.knowledge_cutoff ?? undefined,
      conversationStartDate: c.conversation_start_date ?? undefined,
      channelConfig: c.channel_config ? { validChannels: c.channel_config.valid_channels, channelRequired: c.channel_config.channel_required } : undefined,
      tools: namespaces(c.tools),
    });
  } else {
    content = defined<DeveloperContent>({ type: 'developer', instructions: m.content.instructions ?? undefined, tools: namespaces(m.content.tools) });
  }
  return defined<HarmonyMessage>({ role: m.role, name: m.name, recipient: m.recipient, channel: m.channel, contentType: m.content_type, content });
}

/** A parsed message in index.json's shape (snake_case, absent fields left out). */
export function toIndexShape(m: ParsedMessage): Record<string, string> {
  return defined({ role: m.role, name: m.name, channel: m.channel, recipient: m.recipient, content_type: m.contentType, content: m.content }) as Record<string, string>;
}

/** Token ids of a harmony-formatted text: special tokens split out, the rest ordinary. */
export function encodeHarmonyText(tokenizer: HarmonyTokenizer, text: string): number[] {
  return tokenizer.encodeWithSpecialTokens(text);
}

/** The token stream of a parse case, as feeding steps: token ids, or the end of the stream. */
export function parseSteps(tokenizer: HarmonyTokenizer, v: Vector): Array<number[] | 'eos'> {
  const spec = v.parse!;
  if (v.file !== null && v.kind === 'parse_tokens') {
    return [readFileSync(path.join(harmonyDir, 'vectors', v.file), 'utf8').trim().split(/\s+/).map(Number)];
  }
  if (v.file !== null) return [encodeHarmonyText(tokenizer, vectorText(v.file))];
  if (spec.tokens !== undefined) return [spec.tokens];
  if (spec.text !== undefined) return [encodeHarmonyText(tokenizer, spec.text)];
  return spec.segments!.map((s) => {
    if ('eos' in s) return 'eos';
    if ('tokens' in s) return s.tokens;
    if ('ordinary_text' in s) return tokenizer.encodeOrdinary(s.ordinary_text);
    return encodeHarmonyText(tokenizer, s.text);
  });
}
