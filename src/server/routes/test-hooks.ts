// Chaos hooks, registered only with --test-hooks (GPT_OSS_TEST_HOOKS=1): never in production.
// POST /test-hooks/device-lost destroys a model's GPU device (`device.destroy()`, a real lost
// device on every backend), as a driver reset would; the server then handles the loss
// (model-host.ts). Body: {"model": NAME} (default: the first model).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.js';
import { modelNotFound } from '../errors.js';
import { findModel, servedIds } from '../models.js';

export function testHookRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/test-hooks/device-lost', async (request: FastifyRequest) => {
    const name = (request.body as { model?: unknown } | undefined)?.model;
    const model = typeof name === 'string' ? findModel(ctx, name) : ctx.models[0];
    if (!model) throw modelNotFound(String(name), servedIds(ctx));
    const destroyed = model.host.destroyDevice();
    request.log.warn({ model: model.name, destroyed }, 'test hook: GPU device destroyed');
    return { model: model.name, destroyed };
  });
}
