// GET /v1/models and GET /v1/models/{model}: every served model, then the routing model (`auto`)
// when there are several.
import type { FastifyPluginAsync } from 'fastify';
import type { ServerContext } from '../context.js';
import { modelNotFound } from '../errors.js';
import type { ServedModel } from '../models.js';
import { errorResponses, modelList, modelObject as modelSchema } from './response-schemas.js';

const base = (ctx: ServerContext, id: string) => ({ id, object: 'model', created: ctx.created, owned_by: 'gpt-oss-webgpu' });

function modelObject(ctx: ServerContext, m: ServedModel): Record<string, unknown> {
  const engine = m.host.engine;
  const { maxTokensDefault, maxPromptTokens } = ctx.limits;
  return {
    ...base(ctx, m.name),
    // vLLM's field: clients use it to size prompts. Known once the model is loaded.
    ...(engine ? { max_model_len: engine.contextLength } : {}),
    // This server's request limits (serve --max-tokens-default, --max-prompt-tokens).
    max_tokens_default: maxTokensDefault,
    ...(engine || maxPromptTokens !== null ? { max_prompt_tokens: Math.min(maxPromptTokens ?? Infinity, engine?.contextLength ?? Infinity) } : {}),
  };
}

function routingObject(ctx: ServerContext, name: string): Record<string, unknown> {
  const r = ctx.models.routing!;
  return { ...base(ctx, name), routes_to: [r.small, r.large] };
}

export const modelsRoutes: FastifyPluginAsync = async (app) => {
  const ctx = app.gptOss;
  app.get('/v1/models', { schema: { response: { 200: modelList, ...errorResponses } } }, async () => ({
    object: 'list',
    data: [...ctx.models.all.map((m) => modelObject(ctx, m)), ...(ctx.models.routing ? [routingObject(ctx, ctx.models.routing.name)] : [])],
  }));

  app.get<{ Params: { '*': string } }>('/v1/models/*', { schema: { response: { 200: modelSchema, ...errorResponses } } }, async (request) => {
    // A wildcard, since model ids contain slashes (openai/gpt-oss-20b); the router has decoded it.
    const name = request.params['*'];
    const m = ctx.models.find(name);
    if (m) return modelObject(ctx, m);
    if (ctx.models.routing && name === ctx.models.routing.name) return routingObject(ctx, name);
    throw modelNotFound(name, ctx.models.ids());
  });
};
