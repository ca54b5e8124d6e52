// GET /metrics: Prometheus text exposition.
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.js';

export function metricsRoutes(app: FastifyInstance, ctx: ServerContext): void {
  // Scraped every few seconds: not worth a log line each time.
  app.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => {
    reply.type('text/plain; version=0.0.4; charset=utf-8');
    return ctx.metrics.render();
  });
}
