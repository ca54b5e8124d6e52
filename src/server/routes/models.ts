// GET /v1/models and GET /v1/models/{model}: every served model, then the routing model (`auto`)
// when there are several.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.js';
import { modelNotFound } from '../errors.js';
import { findModel, servedIds, type ServedModel } from '../models.js';

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
  const r = ctx.routing!;
  return { ...base(ctx, name), routes_to: [r.small, r.large] };
}

export function modelsRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/v1/models', async () => ({
    object: 'list',
    data: [...ctx.models.map((m) => modelObject(ctx, m)), ...(ctx.routing ? [routingObject(ctx, ctx.routing.name)] : [])],
  }));

  app.get('/v1/models/*', async (request: FastifyRequest<{ Params: { '*': string } }>) => {
    // A wildcard, since model ids contain slashes (openai/gpt-oss-20b); the router has decoded it.
    const name = request.params['*'];
    const m = findModel(ctx, name);
    if (m) return modelObject(ctx, m);
    if (ctx.routing && name === ctx.routing.name) return routingObject(ctx, name);
    throw modelNotFound(name, servedIds(ctx));
  });
}
