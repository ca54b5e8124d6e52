// GET /health: 200 once every model is loaded, 503 while one loads, after one failed, and from
// the moment the server starts shutting down. In the public scope, so load balancers and
// orchestrators can probe it when API keys are set. `running`: the sequences in the engine's
// batch (its own batching state).
import type { FastifyPluginAsync } from 'fastify';
import { modelFailed, modelLoading, shuttingDown } from '../errors.js';
import { modelGauges } from '../models.js';
import { healthResponses } from './response-schemas.js';

export const healthRoutes: FastifyPluginAsync = async (app) => {
  const ctx = app.gptOss;
  // Probed every few seconds: logged only when something is wrong.
  app.get('/health', { logLevel: 'warn', schema: { response: healthResponses } }, async (_request, reply) => {
    if (ctx.draining || ctx.shutdownSignal.aborted) {
      reply.code(503);
      return { status: 'shutting_down', ...shuttingDown().toJSON() };
    }
    const all = ctx.models.all;
    const models = all.map((m) => {
      const g = modelGauges(m);
      return { name: m.name, status: m.host.status, queue_depth: g.queueDepth, running: g.batching?.running ?? g.running };
    });
    const several = models.length > 1 ? { models } : {};
    const failed = all.find((m) => m.host.status === 'failed');
    // loading, or reloading after a lost GPU device (device_lost)
    const loading = all.find((m) => m.host.status === 'loading' || m.host.status === 'recovering');
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
};
