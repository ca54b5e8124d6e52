// Chaos hooks, registered only with --test-hooks (GPT_OSS_TEST_HOOKS=1): never in production.
// POST /test-hooks/device-lost destroys a model's GPU device (`device.destroy()`, a real lost
// device on every backend), as a driver reset would; the server then handles the loss
// (model-host.ts). Body: {"model": NAME} (default: the first model).
import type { FastifyPluginAsync } from 'fastify';
import { modelNotFound } from '../errors.js';

export const testHookRoutes: FastifyPluginAsync = async (app) => {
  const ctx = app.gptOss;
  app.post<{ Body: { model?: unknown } | undefined }>('/test-hooks/device-lost', async (request) => {
    const name = request.body?.model;
    const model = typeof name === 'string' ? ctx.models.find(name) : ctx.models.all[0];
    if (!model) throw modelNotFound(String(name), ctx.models.ids());
    const destroyed = model.host.destroyDevice();
    request.log.warn({ model: model.name, destroyed }, 'test hook: GPU device destroyed');
    return { model: model.name, destroyed };
  });
};
