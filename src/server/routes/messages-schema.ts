// Request schema of POST /v1/messages and /v1/messages/count_tokens (Anthropic's Messages API).
// Content blocks stay open (clients echo back blocks with cache_control, citations…); the
// mapping (anthropic/request.ts) checks each block's type and fields.
import { nullable } from './schema-parts.js';

const block = { type: 'object', required: ['type'], properties: { type: { type: 'string' } } } as const;

const message = {
  type: 'object',
  required: ['role', 'content'],
  properties: {
    // Claude Code sends system messages between the turns (its environment notes)
    role: { enum: ['user', 'assistant', 'system'] },
    content: { anyOf: [{ type: 'string' }, { type: 'array', items: block }] },
  },
} as const;

const tool = {
  type: 'object',
  required: ['name'],
  properties: {
    name: { type: 'string' },
    description: nullable('string'),
    input_schema: nullable('object'),
    type: nullable('string'),
    // tool search: a deferred tool is not shown to the model until a search finds it
    defer_loading: nullable('boolean'),
  },
} as const;

const common = {
  model: { type: 'string' },
  messages: { type: 'array', minItems: 1, items: message },
  system: { anyOf: [{ type: 'string' }, { type: 'array', items: block }, { type: 'null' }] },
  tools: nullable('array', { items: tool }),
  tool_choice: nullable('object', {
    required: ['type'],
    properties: { type: { enum: ['auto', 'any', 'tool', 'none'] }, name: { type: 'string' }, disable_parallel_tool_use: nullable('boolean') },
  }),
  // enabled with a budget, disabled, or adaptive: the budget picks the harmony reasoning level;
  // display "omitted": thinking blocks carry their signature but no text.
  thinking: nullable('object', {
    required: ['type'],
    properties: {
      type: { enum: ['enabled', 'disabled', 'adaptive'] },
      budget_tokens: nullable('integer', { minimum: 0 }),
      display: nullable('string', { enum: ['summarized', 'omitted', null] }),
    },
  }),
  // effort (Claude Code's /effort): the harmony reasoning level, ahead of a thinking budget
  output_config: nullable('object', { properties: { effort: nullable('string', { enum: ['low', 'medium', 'high', 'xhigh', 'max', null] }) } }),
  // Accepted; the server keeps no thinking between turns to clear (Claude Code sends clear_thinking edits).
  context_management: nullable('object'),
} as const;

export const messagesRequestSchema = {
  type: 'object',
  required: ['messages', 'max_tokens'],
  additionalProperties: false,
  properties: {
    ...common,
    max_tokens: { type: 'integer', minimum: 1 },
    stop_sequences: nullable('array', { maxItems: 16, items: { type: 'string', minLength: 1, maxLength: 1000 } }),
    stream: nullable('boolean'),
    temperature: nullable('number', { minimum: 0, maximum: 1 }),
    top_p: nullable('number', { minimum: 0, maximum: 1 }),
    top_k: nullable('integer', { minimum: 0 }),
    // Accepted; nothing here depends on them.
    metadata: nullable('object'),
    service_tier: nullable('string'),
  },
} as const;

export const countTokensRequestSchema = {
  type: 'object',
  required: ['messages'],
  additionalProperties: false,
  properties: common,
} as const;

export interface MessagesRequestBody {
  model?: string;
  messages: Array<{ role: 'user' | 'assistant' | 'system'; content: string | Array<Record<string, unknown>> }>;
  system?: string | Array<Record<string, unknown>> | null;
  tools?: Array<{ name: string; description?: string | null; input_schema?: Record<string, unknown> | null; type?: string | null; defer_loading?: boolean | null }> | null;
  tool_choice?: { type: 'auto' | 'any' | 'tool' | 'none'; name?: string } | null;
  thinking?: { type: 'enabled' | 'disabled' | 'adaptive'; budget_tokens?: number | null; display?: 'summarized' | 'omitted' | null } | null;
  output_config?: { effort?: 'low' | 'medium' | 'high' | 'xhigh' | 'max' | null } | null;
  max_tokens: number;
  stop_sequences?: string[] | null;
  stream?: boolean | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
}
