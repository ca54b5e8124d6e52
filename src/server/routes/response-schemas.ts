// Response schemas of the JSON routes, by status. fastify serializes a reply with the schema of
// its status code, and a serializer drops every property its schema does not list: so each
// object lists what clients rely on, and those that carry open-ended content (messages, output
// items, tools, metadata) keep `additionalProperties: true`.

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const nullableStr = { type: ['string', 'null'] } as const;
const open = { type: 'object', additionalProperties: true } as const;

export const errorBody = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['message', 'type', 'param', 'code'],
      properties: { message: str, type: str, param: nullableStr, code: nullableStr },
    },
  },
} as const;

/** Every 4xx and 5xx a route answers is an OpenAI error body. */
export const errorResponses = { '4xx': errorBody, '5xx': errorBody } as const;

export const modelObject = {
  type: 'object',
  required: ['id', 'object', 'created', 'owned_by'],
  properties: {
    id: str,
    object: { const: 'model' },
    created: int,
    owned_by: str,
    max_model_len: int,
    max_tokens_default: int,
    max_prompt_tokens: int,
    routes_to: { type: 'array', items: str },
  },
} as const;

export const modelList = {
  type: 'object',
  required: ['object', 'data'],
  properties: { object: { const: 'list' }, data: { type: 'array', items: modelObject } },
} as const;

const healthModel = {
  type: 'object',
  required: ['name', 'status', 'queue_depth', 'running'],
  properties: { name: str, status: { enum: ['loading', 'ready', 'failed'] }, queue_depth: int, running: int },
} as const;

/** /health: ok with the first model's numbers; else loading, failed or shutting_down with an error body. */
export const healthResponses = {
  200: {
    type: 'object',
    required: ['status', 'model', 'queue_depth', 'running'],
    properties: { status: { const: 'ok' }, model: str, queue_depth: int, running: int, models: { type: 'array', items: healthModel } },
  },
  503: {
    type: 'object',
    required: ['status', 'error'],
    properties: { status: { enum: ['loading', 'failed', 'shutting_down'] }, models: { type: 'array', items: healthModel }, error: errorBody.properties.error },
  },
} as const;

const usageDetails = (extra: Record<string, unknown>) => ({ type: 'object', properties: extra, additionalProperties: true });

const completionUsage = {
  type: 'object',
  required: ['prompt_tokens', 'completion_tokens', 'total_tokens'],
  properties: {
    prompt_tokens: int,
    completion_tokens: int,
    total_tokens: int,
    prompt_tokens_details: usageDetails({ cached_tokens: int }),
    completion_tokens_details: usageDetails({ reasoning_tokens: int }),
  },
} as const;

export const chatCompletion = {
  type: 'object',
  required: ['id', 'object', 'created', 'model', 'choices', 'usage'],
  properties: {
    id: str,
    object: { const: 'chat.completion' },
    created: int,
    model: str,
    choices: {
      type: 'array',
      items: {
        type: 'object',
        required: ['index', 'message', 'finish_reason'],
        // message: content, reasoning, reasoning_content, tool_calls, refusal; kept whole
        properties: { index: int, message: open, logprobs: { anyOf: [{ type: 'null' }, open] }, finish_reason: str },
      },
    },
    usage: completionUsage,
  },
} as const;

export const textCompletion = {
  type: 'object',
  required: ['id', 'object', 'created', 'model', 'choices', 'usage'],
  properties: {
    id: str,
    object: { const: 'text_completion' },
    created: int,
    model: str,
    choices: {
      type: 'array',
      items: {
        type: 'object',
        required: ['index', 'text', 'finish_reason'],
        properties: { index: int, text: str, logprobs: { anyOf: [{ type: 'null' }, open] }, finish_reason: str },
      },
    },
    usage: completionUsage,
  },
} as const;

/** A Responses object: the fields OpenAI's SDK reads are listed; the rest passes through as is. */
export const responseObject = {
  type: 'object',
  required: ['id', 'object', 'created_at', 'status', 'model', 'output'],
  additionalProperties: true,
  properties: {
    id: str,
    object: { const: 'response' },
    created_at: int,
    status: str,
    model: str,
    output: { type: 'array', items: open },
  },
} as const;
