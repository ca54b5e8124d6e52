// The onRequest hooks of the three route scopes (routes/index.ts). Each scope is an encapsulated
// fastify context, so its hook runs for its own routes only: no hook matches path strings.
//   public: no hook (/health answers a shutdown itself).
//   api:    503 while shutting down; with API keys, a matching key (counted under its name) as
//           `Authorization: Bearer KEY` or, as Anthropic's clients send it, `x-api-key: KEY`; or
//           the admin key on routes that allow it (/metrics, so Prometheus may scrape).
//   admin:  503 while shutting down; the admin key, and 403 when the server has none.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { ServerContext } from './context.js';
import { ApiError, shuttingDown, unauthorized } from './errors.js';
import { matchApiKey, type ApiKey } from './usage.js';

/** Compares secrets in constant time (hashing first makes the lengths equal). */
function sameSecret(a: string, b: string): boolean {
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

function bearer(request: FastifyRequest): string | null {
  const auth = request.headers.authorization;
  return auth ? (/^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1] ?? null) : null;
}

/** The API key a request presents: its bearer token, else its x-api-key header. */
function presentedKey(request: FastifyRequest): string | null {
  const header = request.headers['x-api-key'];
  return bearer(request) ?? (typeof header === 'string' && header.trim() !== '' ? header.trim() : null);
}

function refuseWhileDraining(ctx: ServerContext): void {
  if (ctx.draining || ctx.shutdownSignal.aborted) throw shuttingDown();
}

export function apiKeyHook(ctx: ServerContext, keys: readonly ApiKey[], adminKey: string | undefined): onRequestAsyncHookHandler {
  return async (request: FastifyRequest, _reply: FastifyReply) => {
    refuseWhileDraining(ctx);
    if (keys.length === 0) return;
    if (!request.headers.authorization && request.headers['x-api-key'] === undefined) {
      throw unauthorized(
        "You didn't provide an API key. Provide it in an Authorization header using Bearer auth (Authorization: Bearer YOUR_KEY).",
      );
    }
    const presented = presentedKey(request);
    const key = presented === null ? null : matchApiKey(keys, presented);
    if (key) {
      request.gptOssKey = key.name;
      return;
    }
    const adminToo = request.routeOptions.config.adminKeyToo === true;
    if (!(adminToo && adminKey !== undefined && presented !== null && sameSecret(presented, adminKey))) throw unauthorized('Incorrect API key provided.');
  };
}

export function adminKeyHook(ctx: ServerContext, adminKey: string | undefined): onRequestAsyncHookHandler {
  return async (request: FastifyRequest, _reply: FastifyReply) => {
    refuseWhileDraining(ctx);
    if (adminKey === undefined) throw new ApiError(403, 'The admin endpoints are off: start the server with --admin-key.', 'invalid_request_error', null, 'admin_disabled');
    const presented = bearer(request);
    if (presented === null || !sameSecret(presented, adminKey)) throw unauthorized('Incorrect admin key provided.');
  };
}
