// GET / and GET /ui/*: the chat page, plain HTML, CSS and JS from the package's ui/ folder (marked
// and DOMPurify vendored in ui/vendor/, so it works offline with no build step). The files are
// read once, when the server starts, and only those are served: a path that is not one of them
// is a 404, so nothing outside ui/ can be reached. The page is public (it holds no data; the API
// it calls still needs the key), and its CSP allows only this origin.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { routeNotFound } from '../errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Open without an API key (the chat page and its assets). */
    public?: boolean;
  }
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.txt': 'text/plain; charset=utf-8',
};

/** Scripts, styles, images and fetches from this origin only; no frames, plugins or forms elsewhere. */
export const UI_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** ui/ beside dist/ (or src/), or beside the bundled cli.mjs (the portable bundle's app/ui). */
export function uiDir(): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const dir of [join(here, '..', '..', '..', 'ui'), join(here, 'ui')]) if (existsSync(join(dir, 'index.html'))) return dir;
  return null;
}

interface Asset {
  type: string;
  body: Buffer;
}

/** Every servable file under `dir`, by URL path (/ui/app.js), read into memory. */
function readAssets(dir: string): Map<string, Asset> {
  const out = new Map<string, Asset>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const file = join(d, e.name);
      if (e.isDirectory()) walk(file);
      else if (e.isFile()) {
        const ext = extname(e.name);
        const type = TYPES[ext];
        if (type) out.set(`/ui/${relative(dir, file).split(sep).join('/')}`, { type, body: readFileSync(file) });
      }
    }
  };
  walk(dir);
  return out;
}

function send(reply: FastifyReply, asset: Asset): FastifyReply {
  return reply
    .header('content-type', asset.type)
    .header('content-security-policy', UI_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-cache')
    .send(asset.body);
}

/** The chat page's routes (a fastify plugin). `dir` defaults to uiDir(). */
export async function uiRoutes(app: FastifyInstance, opts: { dir?: string }): Promise<void> {
  if (!app.gptOss.ui) return;
  const dir = opts.dir ?? uiDir();
  if (dir === null) {
    app.log.warn('the chat page is missing (no ui/ folder beside the code); GET / is a 404');
    return;
  }
  const assets = readAssets(dir);
  const index = assets.get('/ui/index.html')!;
  app.get('/', { config: { public: true }, logLevel: 'warn' }, async (_request, reply) => send(reply, index));
  app.get('/ui/*', { config: { public: true }, logLevel: 'warn' }, async (request, reply) => {
    const path = request.url.split('?')[0]!;
    const asset = assets.get(path);
    if (!asset) {
      const err = routeNotFound(request.method, request.url);
      return reply.code(err.status).send(err.toJSON());
    }
    return send(reply, asset);
  });
}
