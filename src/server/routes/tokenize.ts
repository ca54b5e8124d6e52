// POST /tokenize and POST /detokenize, in vLLM's shapes. /tokenize takes a `prompt` (harmony
// text as /v1/completions reads it: special-token strings are format tokens) or chat `messages`
// (the prompt /v1/chat/completions would run, ending in `<|start|>assistant`); it answers the
// ids, their count and the model's context (`max_model_len`), and with `return_token_strs` each
// token's text. /detokenize turns ids back into text. Both behind the API key, like /v1/*.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { renderChatCompletion, renderRawPrompt } from '../../harmony/index.js';
import type { ServerContext } from '../context.js';
import { invalidRequest, modelNotFound } from '../errors.js';
import { renderOrReject } from '../generation.js';
import { ignoreUnknownParams } from '../ignored-params.js';
import type { ServedModel } from '../models.js';
import { nullable } from './schema-parts.js';

const tokenizeSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    model: nullable('string'),
    prompt: { type: 'string' },
    messages: { type: 'array', minItems: 1, items: { type: 'object' } },
    tools: nullable('array'),
    reasoning_effort: nullable('string'),
    add_generation_prompt: nullable('boolean'),
    add_special_tokens: nullable('boolean'),
    return_token_strs: nullable('boolean'),
  },
} as const;

const detokenizeSchema = {
  type: 'object',
  required: ['tokens'],
  additionalProperties: false,
  properties: {
    model: nullable('string'),
    tokens: { type: 'array', maxItems: 1_000_000, items: { type: 'integer', minimum: 0 } },
  },
} as const;

interface TokenizeBody {
  model?: string | null;
  prompt?: string;
  messages?: Array<Record<string, unknown>>;
  tools?: unknown[] | null;
  reasoning_effort?: string | null;
  return_token_strs?: boolean | null;
}

/** The model a request names (absent: the first); 404 lists what is served, 503 while it loads. */
function pick(ctx: ServerContext, model: string | null | undefined): ServedModel {
  if (model === undefined || model === null) return ctx.models.all[0]!;
  const m = ctx.models.find(model);
  if (!m) throw modelNotFound(model, ctx.models.ids());
  return m;
}

export const tokenizeRoutes: FastifyPluginAsync = async (app) => {
  const ctx = app.gptOss;
  app.post('/tokenize', { schema: { body: tokenizeSchema }, preValidation: ignoreUnknownParams(tokenizeSchema, ctx.params) }, async (request: FastifyRequest) => {
    const body = request.body as TokenizeBody;
    if ((body.prompt === undefined) === (body.messages === undefined)) throw invalidRequest('send either prompt or messages', body.prompt === undefined ? 'prompt' : 'messages');
    const { engine, tokenizer } = pick(ctx, body.model).host.ready();
    const tokens = renderOrReject(request.log, () =>
      body.prompt !== undefined
        ? body.prompt === ''
          ? []
          : renderRawPrompt(body.prompt, { tokenizer }).tokenIds
        : renderChatCompletion({ messages: body.messages, tools: body.tools ?? undefined, reasoning_effort: body.reasoning_effort ?? undefined }, { tokenizer, ...ctx.promptOptions }).tokenIds,
    );
    return {
      count: tokens.length,
      max_model_len: engine.contextLength,
      tokens,
      token_strs: body.return_token_strs ? tokens.map((t) => tokenizer.decode([t])) : null,
    };
  });

  app.post('/detokenize', { schema: { body: detokenizeSchema }, preValidation: ignoreUnknownParams(detokenizeSchema, ctx.params) }, async (request: FastifyRequest) => {
    const body = request.body as { model?: string | null; tokens: number[] };
    const { tokenizer } = pick(ctx, body.model).host.ready();
    const bad = body.tokens.findIndex((t) => tokenizer.tokenBytes(t) === undefined);
    if (bad >= 0) throw invalidRequest(`tokens[${bad}] (${body.tokens[bad]}) is not a token id of this model`, `tokens[${bad}]`, 'invalid_value');
    return { prompt: tokenizer.decode(body.tokens) };
  });
};
