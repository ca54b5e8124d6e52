// Every route plugin of the server, each with the scope it is registered in. Adding a route
// family is one line here. A plugin is a FastifyPluginAsync that reads the shared state from
// `app.gptOss` and declares its routes with full paths (no prefix):
//   public: no authentication (probes, the chat page);
//   api:    the API keys when set (/v1/*, /metrics, which also takes the admin key: route config
//           `adminKeyToo`), 503 while shutting down;
//   admin:  the admin key (/admin/*), 503 while shutting down.
import type { FastifyPluginAsync } from 'fastify';
import { adminRoutes } from './admin.js';
import { chatRoutes } from './chat.js';
import { completionsRoutes } from './completions.js';
import { healthRoutes } from './health.js';
import { metricsRoutes } from './metrics.js';
import { modelsRoutes } from './models.js';
import { responsesRoutes } from './responses.js';
import { messagesRoutes } from './messages.js';
import { tokenizeRoutes } from './tokenize.js';
import { uiRoutes } from './ui.js';

export type RouteScope = 'public' | 'api' | 'admin';

export const ROUTE_PLUGINS: ReadonlyArray<readonly [RouteScope, FastifyPluginAsync]> = [
  ['public', healthRoutes],
  ['api', metricsRoutes],
  ['api', modelsRoutes],
  ['api', chatRoutes],
  ['api', completionsRoutes],
  ['api', responsesRoutes],
  ['api', tokenizeRoutes],
  ['api', messagesRoutes],
  ['admin', adminRoutes],
  ['public', uiRoutes],
];
