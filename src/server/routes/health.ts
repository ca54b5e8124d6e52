// GET /health: 200 once every model is loaded, 503 while one loads, after one failed, and from
// the moment the server starts shutting down. Open even when API keys are set, so load balancers
// and orchestrators can probe it.
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.js';
import { modelFailed, shuttingDown } from '../errors.js';

export function healthRoutes(app: FastifyInstance, ctx: ServerContext): void {
  // Probed every few seconds: logged only when something is wrong.
  app.get('/health', { logLevel: 'warn' }, async (_request, reply) => {
    if (ctx.draining || ctx.shutdownSignal.aborted) {
      reply.code(503);
      return { status: 'shutting_down', ...shuttingDown().toJSON() };
    }
    const models = ctx.models.map((m) => ({ name: m.name, status: m.host.status, queue_depth: m.scheduler.queueDepth, running: m.scheduler.busy ? 1 : 0 }));
    const several = models.length > 1 ? { models } : {};
    const failed = ctx.models.find((m) => m.host.status === 'failed');
    // loading, or reloading after a lost GPU device (device_lost)
    const loading = ctx.models.find((m) => m.host.status === 'loading' || m.host.status === 'recovering');
    if (!failed && !loading) {
      // `model`, `queue_depth`, `running`: the first model's, as before several models were served.
      const first = models[0]!;
      return { status: 'ok', model: first.name, queue_depth: first.queue_depth, running: first.running, ...several };
    }
    const why = failed?.host.error?.message ?? 'unknown error';
    const err = failed ? modelFailed(models.length > 1 ? `${failed.name}: ${why}` : why) : loading!.host.unavailable();
    reply.code(503).headers(err.headers);
    return { status: failed ? 'failed' : loading!.host.status, ...several, ...err.toJSON() };
  });
}
