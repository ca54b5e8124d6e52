// Request schema of POST /v1/chat/completions. Unknown top-level fields are refused as OpenAI does
// ("Unrecognized request argument"); message objects stay open, since clients echo back
// assistant messages with extra fields (refusal, annotations, audio).
import { ignoredProperties, maxTokens, nullable, penaltyProperties, samplingProperties, stopProperty, streamOptions, toolParameters } from './schema-parts.js';

const content = {
  anyOf: [
    { type: 'string' },
    { type: 'null' },
    { type: 'array', items: { type: 'object', required: ['type'], properties: { type: { type: 'string' }, text: { type: 'string' } } } },
  ],
} as const;

const toolCall = {
  type: 'object',
  required: ['function'],
  properties: {
    id: { type: 'string', maxLength: 256 },
    type: { const: 'function' },
    function: {
      type: 'object',
      required: ['name'],
      properties: { name: { type: 'string' }, arguments: { type: ['string', 'object'] } },
    },
  },
} as const;

const message = {
  type: 'object',
  required: ['role'],
  properties: {
    role: { enum: ['system', 'developer', 'user', 'assistant', 'tool', 'function'] },
    content,
    name: { type: 'string' },
    tool_calls: nullable('array', { items: toolCall }),
    tool_call_id: { type: 'string' },
    reasoning: nullable('string'),
    reasoning_content: nullable('string'),
    refusal: nullable('string'),
  },
  allOf: [
    { if: { properties: { role: { const: 'tool' } } }, then: { required: ['tool_call_id', 'content'] } },
    { if: { properties: { role: { enum: ['system', 'developer', 'user'] } } }, then: { required: ['content'] } },
  ],
} as const;

const tool = {
  type: 'object',
  required: ['type', 'function'],
  additionalProperties: false,
  properties: {
    type: { const: 'function' },
    function: {
      type: 'object',
      required: ['name'],
      additionalProperties: false,
      properties: {
        name: { type: 'string' },
        description: nullable('string'),
        parameters: toolParameters,
        strict: nullable('boolean'),
      },
    },
  },
} as const;

export const chatRequestSchema = {
  type: 'object',
  required: ['messages'],
  additionalProperties: false,
  properties: {
    model: { type: 'string' },
    messages: { type: 'array', minItems: 1, items: message },
    tools: nullable('array', { items: tool }),
    tool_choice: {
      anyOf: [
        { enum: ['none', 'auto', 'required'] },
        {
          type: 'object',
          required: ['type'],
          properties: { type: { type: 'string' }, function: { type: 'object', properties: { name: { type: 'string' } } } },
        },
        { type: 'null' },
      ],
    },
    reasoning_effort: nullable('string'),
    // OpenAI's `reasoning` plus OpenRouter's (exclude, enabled, max_tokens: accepted, only exclude acts).
    reasoning: nullable('object', {
      properties: { effort: nullable('string'), summary: nullable('string'), exclude: nullable('boolean'), enabled: nullable('boolean'), max_tokens: nullable('integer') },
      additionalProperties: false,
    }),
    /** vLLM's: false leaves the reasoning out of the response. */
    include_reasoning: nullable('boolean'),
    /** vLLM's and llama.cpp's template arguments; `reasoning_effort` is read, the rest ignored. */
    chat_template_kwargs: nullable('object', { properties: { reasoning_effort: nullable('string') } }),
    max_tokens: maxTokens,
    max_completion_tokens: maxTokens,
    ...samplingProperties,
    stop: stopProperty,
    n: nullable('integer', { minimum: 1, maximum: 128 }),
    stream: nullable('boolean'),
    stream_options: streamOptions,
    logprobs: nullable('boolean'),
    top_logprobs: nullable('integer', { minimum: 0, maximum: 20 }),
    response_format: nullable('object', { required: ['type'], properties: { type: { type: 'string' } } }),
    modalities: nullable('array', { items: { type: 'string' } }),
    verbosity: nullable('string'),
    ...penaltyProperties,
    ...ignoredProperties,
  },
} as const;

export interface ChatRequestBody {
  model?: string;
  messages: Array<Record<string, unknown>>;
  tools?: Array<{ type: 'function'; function: { name: string; description?: string | null; parameters?: Record<string, unknown> } }> | null;
  tool_choice?: 'none' | 'auto' | 'required' | { type: string; function?: { name?: string } } | null;
  reasoning_effort?: string | null;
  reasoning?: { effort?: string | null; exclude?: boolean | null; enabled?: boolean | null } | null;
  include_reasoning?: boolean | null;
  chat_template_kwargs?: { reasoning_effort?: string | null; [k: string]: unknown } | null;
  min_p?: number | null;
  repetition_penalty?: number | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  ignore_eos?: boolean | null;
  seed?: number | null;
  stop?: string | string[] | null;
  n?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean | null } | null;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
  response_format?: { type: string; [k: string]: unknown } | null;
  modalities?: string[] | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, unknown> | null;
}
