// GET /v1/models and GET /v1/models/{model}: the one model this server serves.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.js';
import { modelNotFound } from '../errors.js';

function modelObject(ctx: ServerContext): Record<string, unknown> {
  const engine = ctx.host.engine;
  return {
    id: ctx.servedModelName,
    object: 'model',
    created: ctx.created,
    owned_by: 'gpt-oss-webgpu',
    // vLLM's field: clients use it to size prompts. Known once the model is loaded.
    ...(engine ? { max_model_len: engine.contextLength } : {}),
    // This server's request limits (serve --max-tokens-default, --max-prompt-tokens).
    max_tokens_default: ctx.limits.maxTokensDefault,
    ...(engine || ctx.limits.maxPromptTokens !== null
      ? { max_prompt_tokens: Math.min(ctx.limits.maxPromptTokens ?? Infinity, engine?.contextLength ?? Infinity) }
      : {}),
  };
}

export function modelsRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/v1/models', async () => ({ object: 'list', data: [modelObject(ctx)] }));

  app.get('/v1/models/*', async (request: FastifyRequest<{ Params: { '*': string } }>) => {
    // A wildcard, since model ids contain slashes (openai/gpt-oss-20b); the router has decoded it.
    const name = request.params['*'];
    if (!ctx.modelNames.has(name)) throw modelNotFound(name);
    return modelObject(ctx);
  });
}
