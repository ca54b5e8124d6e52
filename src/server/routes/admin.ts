// GET /admin/usage: the usage counters as JSON, per API key name and model, with the price table
// they were costed by. Admin scope: its own key (--admin-key), never an API key.
import type { FastifyPluginAsync } from 'fastify';

export const adminRoutes: FastifyPluginAsync = async (app) => {
  const ctx = app.gptOss;
  app.get('/admin/usage', async () => {
    const data = ctx.usage.rows();
    const sum = (k: 'requests' | 'prompt_tokens' | 'cached_tokens' | 'completion_tokens' | 'cost_usd') => data.reduce((n, r) => n + r[k], 0);
    return {
      object: 'usage',
      since: ctx.created,
      prices_per_million_tokens: ctx.usage.priceList,
      data,
      total: {
        requests: sum('requests'),
        prompt_tokens: sum('prompt_tokens'),
        cached_tokens: sum('cached_tokens'),
        completion_tokens: sum('completion_tokens'),
        cost_usd: sum('cost_usd'),
      },
    };
  });
};
