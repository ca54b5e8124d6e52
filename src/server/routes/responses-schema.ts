// Request schema of POST /v1/responses. Input items stay open (clients send back output items
// with their ids and statuses); the renderer checks each item's shape.
import { ignoredProperties, maxTokens, nullable, samplingProperties } from './schema-parts.js';

const functionTool = {
  type: 'object',
  required: ['type'],
  properties: {
    type: { type: 'string' },
    name: { type: 'string' },
    description: nullable('string'),
    parameters: nullable('object'),
    strict: nullable('boolean'),
  },
} as const;

/** A function, a `namespace` (a group of functions), or a built-in tool (dropped by the route). */
const tool = {
  ...functionTool,
  properties: { ...functionTool.properties, tools: { type: 'array', items: functionTool } },
} as const;

const isType = (type: string) => ({ required: ['type'], properties: { type: { const: type } } });

/** Item fields by type; extra fields are allowed (clients send back our items with ids and statuses). */
const inputItem = {
  type: 'object',
  properties: {
    type: { type: 'string' },
    role: { type: 'string' },
    // null: reasoning items sent back by clients that keep only the encrypted content
    content: { anyOf: [{ type: 'string' }, { type: 'null' }, { type: 'array', items: { type: 'object', required: ['type'], properties: { type: { type: 'string' }, text: { type: 'string' } } } }] },
  },
  allOf: [
    {
      if: isType('reasoning'),
      then: {
        properties: {
          content: nullable('array', { items: { type: 'object', required: ['type', 'text'], properties: { type: { const: 'reasoning_text' }, text: { type: 'string' } } } }),
          summary: nullable('array'),
          encrypted_content: nullable('string'),
        },
      },
    },
    {
      if: isType('function_call'),
      then: {
        required: ['call_id', 'name', 'arguments'],
        properties: { call_id: { type: 'string' }, name: { type: 'string' }, namespace: nullable('string'), arguments: { type: 'string' } },
      },
    },
    {
      if: isType('function_call_output'),
      then: { required: ['call_id', 'output'], properties: { call_id: { type: 'string' }, output: { anyOf: [{ type: 'string' }, { type: 'array' }] } } },
    },
  ],
} as const;

export const responsesRequestSchema = {
  type: 'object',
  required: ['input'],
  additionalProperties: false,
  properties: {
    model: { type: 'string' },
    input: { anyOf: [{ type: 'string' }, { type: 'array', minItems: 1, items: inputItem }] },
    instructions: nullable('string'),
    tools: nullable('array', { items: tool }),
    tool_choice: {
      anyOf: [
        { enum: ['none', 'auto', 'required'] },
        { type: 'object', required: ['type'], properties: { type: { type: 'string' }, name: { type: 'string' } } },
        { type: 'null' },
      ],
    },
    reasoning: nullable('object', {
      properties: { effort: nullable('string'), summary: nullable('string'), generate_summary: nullable('string') },
      additionalProperties: false,
    }),
    max_output_tokens: maxTokens,
    max_tool_calls: nullable('integer', { minimum: 1 }),
    ...samplingProperties,
    stream: nullable('boolean'),
    stream_options: nullable('object', { properties: { include_obfuscation: nullable('boolean') }, additionalProperties: false }),
    previous_response_id: nullable('string', { maxLength: 256 }),
    text: nullable('object', {
      properties: { format: nullable('object', { required: ['type'], properties: { type: { type: 'string' } } }), verbosity: nullable('string') },
      additionalProperties: false,
    }),
    truncation: { enum: ['auto', 'disabled', null] },
    include: nullable('array', { items: { type: 'string' } }),
    top_logprobs: nullable('integer', { minimum: 0, maximum: 20 }),
    background: nullable('boolean'),
    ...ignoredProperties,
    // Sent by Codex and OpenAI's SDKs; nothing here depends on them.
    client_metadata: nullable('object'),
    prompt_cache_retention: nullable('string'),
  },
} as const;

export interface ResponsesTool {
  type: string;
  name?: string;
  description?: string | null;
  parameters?: Record<string, unknown> | null;
  /** A namespace's functions. */
  tools?: Array<{ type: string; name?: string; description?: string | null; parameters?: Record<string, unknown> | null }>;
}

export interface ResponsesRequestBody {
  model?: string;
  input: string | Array<Record<string, unknown>>;
  instructions?: string | null;
  tools?: Array<ResponsesTool> | null;
  tool_choice?: 'none' | 'auto' | 'required' | { type: string; name?: string } | null;
  reasoning?: { effort?: string | null; summary?: string | null; generate_summary?: string | null } | null;
  include?: string[] | null;
  max_output_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  ignore_eos?: boolean | null;
  seed?: number | null;
  stream?: boolean | null;
  previous_response_id?: string | null;
  store?: boolean | null;
  metadata?: Record<string, unknown> | null;
  text?: { format?: { type: string } | null } | null;
  truncation?: 'auto' | 'disabled' | null;
  top_logprobs?: number | null;
  background?: boolean | null;
  parallel_tool_calls?: boolean | null;
  user?: string | null;
}
