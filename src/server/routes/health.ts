// GET /health: 200 once the model is loaded, 503 while it loads, after it failed, and from the
// moment the server starts shutting down. Open even when an API key is set, so load balancers
// and orchestrators can probe it.
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.js';
import { modelFailed, modelLoading, shuttingDown } from '../errors.js';

export function healthRoutes(app: FastifyInstance, ctx: ServerContext): void {
  // Probed every few seconds: logged only when something is wrong.
  app.get('/health', { logLevel: 'warn' }, async (_request, reply) => {
    if (ctx.draining || ctx.shutdownSignal.aborted) {
      reply.code(503);
      return { status: 'shutting_down', ...shuttingDown().toJSON() };
    }
    const status = ctx.host.status;
    if (status === 'ready') {
      return { status: 'ok', model: ctx.servedModelName, queue_depth: ctx.scheduler.queueDepth, running: ctx.scheduler.busy ? 1 : 0 };
    }
    const err = status === 'loading' ? modelLoading() : modelFailed(ctx.host.error?.message ?? 'unknown error');
    reply.code(503).headers(err.headers);
    return { status, ...err.toJSON() };
  });
}
