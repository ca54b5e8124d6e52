// GET /metrics: Prometheus text exposition. API scope, and the admin key works too, so a
// Prometheus server can scrape with it.
import type { FastifyPluginAsync } from 'fastify';

export const metricsRoutes: FastifyPluginAsync = async (app) => {
  const ctx = app.gptOss;
  // Scraped every few seconds: not worth a log line each time.
  app.get('/metrics', { logLevel: 'warn', config: { adminKeyToo: true } }, async (_request, reply) => {
    reply.type('text/plain; version=0.0.4; charset=utf-8');
    return ctx.metrics.render();
  });
};
