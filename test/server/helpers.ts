// Shared set-up of the server tests: the real server on loopback (port 0) serving synthetic:tiny
// (full o200k_harmony vocabulary, random weights), driven with the official `openai` client.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import type { FastifyInstance } from 'fastify';
import { createServer, type ServerOptions } from '../../src/server/app.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED = path.resolve(REPO_ROOT, '..', 'shared');
/** Pinned so a test can render the same prompt the server renders. */
export const CURRENT_DATE = '2025-08-05';
export const MODEL = 'synthetic:tiny';
/**
 * Request fields of a test that needs an answer of exactly max_tokens: synthetic models end
 * their answers after ~30 tokens on average (<|return|>), so such a test ignores end tokens
 * (vLLM's and llama.cpp's ignore_eos), as benchmarks do.
 */
export const FIXED_LENGTH = { ignore_eos: true } as const;

export interface TestServer {
  app: FastifyInstance;
  baseURL: string;
  client: OpenAI;
  close(): Promise<void>;
}

export async function startServer(opts: Partial<ServerOptions> = {}): Promise<TestServer> {
  const app = createServer({
    ...(opts.engine ? { servedModelName: MODEL } : { modelSpec: MODEL, context: 2048 }),
    currentDate: CURRENT_DATE,
    logger: false,
    ...opts,
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  await app.gptOss.host.loaded;
  if (app.gptOss.host.error) throw app.gptOss.host.error;
  const baseURL = `${url}/v1`;
  const client = new OpenAI({ baseURL, apiKey: opts.apiKey ?? 'unused', maxRetries: 0, timeout: 120_000 });
  return { app, baseURL, client, close: () => app.close() };
}

/** Raw HTTP, for what the client library will not send. */
export async function post(baseURL: string, route: string, body: string | object, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(`${baseURL}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}
