// JSON Schema pieces the request schemas of the three generation routes share. Types are strict
// (no coercion: "5" is not 5); value rules that need the model (context length) or give a
// clearer message by hand (n > 1, logprobs) are checked in the routes.

export const nullable = (type: string | string[], extra: Record<string, unknown> = {}) => ({
  type: [...(Array.isArray(type) ? type : [type]), 'null'],
  ...extra,
});

export const samplingProperties = {
  temperature: nullable('number', { minimum: 0, maximum: 2 }),
  top_p: nullable('number', { minimum: 0, maximum: 1 }),
  /** vLLM's extension; 0 or -1 turn it off. */
  top_k: nullable('integer', { minimum: -1 }),
  seed: nullable('integer'),
  /** vLLM's and llama.cpp's extension: generate past the end tokens, to max_tokens (benchmarks, fixed-length tests). */
  ignore_eos: nullable('boolean'),
} as const;

export const stopProperty = {
  anyOf: [
    { type: 'string', minLength: 1, maxLength: 1000 },
    { type: 'array', maxItems: 4, items: { type: 'string', minLength: 1, maxLength: 1000 } },
    { type: 'null' },
  ],
} as const;

/** Fields OpenAI clients send that change nothing here; accepted so such clients work. */
export const ignoredProperties = {
  user: nullable('string'),
  metadata: nullable('object'),
  store: nullable('boolean'),
  parallel_tool_calls: nullable('boolean'),
  service_tier: nullable('string'),
  prompt_cache_key: nullable('string'),
  safety_identifier: nullable('string'),
} as const;

export const penaltyProperties = {
  presence_penalty: nullable('number', { minimum: -2, maximum: 2 }),
  frequency_penalty: nullable('number', { minimum: -2, maximum: 2 }),
  logit_bias: nullable('object'),
  /** vLLM's and llama.cpp's: only their neutral values (0, 1) until the GPU sampler has them. */
  min_p: nullable('number', { minimum: 0, maximum: 1 }),
  repetition_penalty: nullable('number', { exclusiveMinimum: 0, maximum: 10 }),
} as const;

/** `[{…}]` of JSON Schema objects allowed as function parameters (checked in depth by checkToolSchema). */
export const toolParameters = { type: 'object' } as const;

export const streamOptions = nullable('object', {
  properties: { include_usage: nullable('boolean'), include_obfuscation: nullable('boolean') },
  additionalProperties: false,
});

export const maxTokens = nullable('integer', { minimum: 1 });
