// Shared set-up of the server tests: the real server on loopback (port 0) serving synthetic:tiny
// (full o200k_harmony vocabulary, random weights), driven with the official `openai` client.
import OpenAI from 'openai';
import type { FastifyInstance } from 'fastify';
import { createServer, type ServerOptions } from '../../src/server/app.js';
import type { ServingEngine } from '../../src/server/model-host.js';
import type { ServedModel } from '../../src/server/models.js';
import type { HarmonyTokenizer } from '../../src/tokenizer/index.js';

export { REPO_ROOT, SHARED } from '../helpers/oracle.js';
export { until } from '../helpers/until.js';

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
  /** The served model (MODEL): its host and admission queue. */
  model: ServedModel;
  close(): Promise<void>;
}

/** Server options, with `engine` (and `tokenizer`) as the one model MODEL instead of `models`. */
export type TestServerOptions = Partial<ServerOptions> & { engine?: ServingEngine; tokenizer?: HarmonyTokenizer };

export async function startServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const { engine, tokenizer, ...rest } = opts;
  const app = createServer({
    models: [engine ? { name: MODEL, engine, tokenizer } : { spec: MODEL }],
    ...(engine ? {} : { context: 2048 }),
    currentDate: CURRENT_DATE,
    logger: false,
    ...rest,
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const model = app.gptOss.models.all[0]!;
  await model.host.loaded;
  if (model.host.error) throw model.host.error;
  const baseURL = `${url}/v1`;
  const client = new OpenAI({ baseURL, apiKey: opts.apiKey ?? 'unused', maxRetries: 0, timeout: 120_000 });
  return { app, baseURL, client, model, close: () => app.close() };
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
