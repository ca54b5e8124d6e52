// Request schema of POST /v1/completions (legacy text completions on a raw harmony prompt).
import { ignoredProperties, maxTokens, nullable, penaltyProperties, samplingProperties, stopProperty, streamOptions } from './schema-parts.js';

export const completionsRequestSchema = {
  type: 'object',
  required: ['prompt'],
  additionalProperties: false,
  properties: {
    model: { type: 'string' },
    prompt: {
      anyOf: [
        { type: 'string' },
        { type: 'array', items: { type: 'string' } },
        { type: 'array', items: { type: 'integer', minimum: 0 } },
      ],
    },
    max_tokens: maxTokens,
    ...samplingProperties,
    stop: stopProperty,
    n: nullable('integer', { minimum: 1, maximum: 128 }),
    best_of: nullable('integer', { minimum: 1, maximum: 20 }),
    stream: nullable('boolean'),
    stream_options: streamOptions,
    echo: nullable('boolean'),
    suffix: nullable('string'),
    logprobs: nullable('integer', { minimum: 0, maximum: 5 }),
    ...penaltyProperties,
    ...ignoredProperties,
  },
} as const;

export interface CompletionsRequestBody {
  model?: string;
  prompt: string | string[] | number[];
  max_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  ignore_eos?: boolean | null;
  seed?: number | null;
  stop?: string | string[] | null;
  n?: number | null;
  best_of?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean | null } | null;
  echo?: boolean | null;
  suffix?: string | null;
  logprobs?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, unknown> | null;
  min_p?: number | null;
  repetition_penalty?: number | null;
}
