// `gpt-oss-webgpu serve`: the OpenAI-compatible server. It listens at once and loads the model in
// the background (GET /health answers 503 until it is ready), then runs until SIGINT or SIGTERM
// and closes cleanly: the queue is failed, the running generation stopped, the model freed.
import { parseArgs } from 'node:util';
import { stderrProgressBar } from '../model/hub.js';
import { createServer, DEFAULT_MAX_QUEUE } from './app.js';

export { createServer, type ServerOptions } from './app.js';

export const SERVE_USAGE = `Usage: gpt-oss-webgpu serve [flags]

Serves an OpenAI-compatible API (/v1/chat/completions, /v1/completions, /v1/responses,
/v1/models, /health, /metrics). Every flag can also be set with the environment variable shown.

  --model SPEC              model folder, Hugging Face id, or synthetic:tiny    GPT_OSS_MODEL
                            (default openai/gpt-oss-20b, downloaded to the HF cache)
  --host HOST               address to listen on (default 127.0.0.1)            GPT_OSS_HOST
  --port N                  port (default 8000; 0 picks a free one)             GPT_OSS_PORT
  --api-key KEY             require "Authorization: Bearer KEY"                 GPT_OSS_API_KEY
  --context N               KV-cache positions (default: the model's maximum)   GPT_OSS_CONTEXT
  --max-queue N             requests that may wait for the engine (default ${DEFAULT_MAX_QUEUE}) GPT_OSS_MAX_QUEUE
  --served-model-name NAME  model id clients use (default: the --model value)   GPT_OSS_SERVED_MODEL_NAME
  --log-level LEVEL         fatal, error, warn, info, debug, trace (default info) GPT_OSS_LOG_LEVEL
`;

export interface ServeConfig {
  model: string;
  host: string;
  port: number;
  apiKey?: string;
  context?: number;
  maxQueue: number;
  servedModelName?: string;
  logLevel: string;
}

export class ServeUsageError extends Error {
  override name = 'ServeUsageError';
}

const FLAGS = {
  model: 'GPT_OSS_MODEL',
  host: 'GPT_OSS_HOST',
  port: 'GPT_OSS_PORT',
  'api-key': 'GPT_OSS_API_KEY',
  context: 'GPT_OSS_CONTEXT',
  'max-queue': 'GPT_OSS_MAX_QUEUE',
  'served-model-name': 'GPT_OSS_SERVED_MODEL_NAME',
  'log-level': 'GPT_OSS_LOG_LEVEL',
} as const;

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function integer(text: string, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(text.trim())) throw new ServeUsageError(`--${flag}: "${text}" is not a whole number`);
  const n = Number(text);
  if (n < min || n > max) throw new ServeUsageError(`--${flag}: ${n} is outside [${min}, ${max}]`);
  return n;
}

/** Flags over environment variables over defaults. Throws ServeUsageError on bad input. */
export function parseServeArgs(argv: string[], env: Record<string, string | undefined> = process.env): ServeConfig & { help: boolean } {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: 'string' as const }]));
    ({ values } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new ServeUsageError((e as Error).message);
  }
  const get = (flag: keyof typeof FLAGS): string | undefined => {
    const v = values[flag];
    if (typeof v === 'string') return v;
    const e = env[FLAGS[flag]];
    return e === undefined || e === '' ? undefined : e;
  };
  const port = get('port');
  const context = get('context');
  const maxQueue = get('max-queue');
  const logLevel = get('log-level') ?? 'info';
  if (!LOG_LEVELS.has(logLevel)) throw new ServeUsageError(`--log-level: "${logLevel}" is not one of ${[...LOG_LEVELS].join(', ')}`);
  const apiKey = get('api-key');
  return {
    help: values['help'] === true,
    model: get('model') ?? 'openai/gpt-oss-20b',
    host: get('host') ?? '127.0.0.1',
    port: port === undefined ? 8000 : integer(port, 'port', 0, 65535),
    ...(apiKey !== undefined ? { apiKey } : {}),
    ...(context !== undefined ? { context: integer(context, 'context', 1) } : {}),
    maxQueue: maxQueue === undefined ? DEFAULT_MAX_QUEUE : integer(maxQueue, 'max-queue', 0),
    ...(get('served-model-name') !== undefined ? { servedModelName: get('served-model-name') } : {}),
    logLevel,
  };
}

export interface ServeIo {
  env?: Record<string, string | undefined>;
  stdout?: { write(s: string): unknown };
  stderr?: { write(s: string): unknown; isTTY?: boolean };
  /** Stops the server like SIGTERM does (tests, embedding). */
  signal?: AbortSignal;
  /** Told the address once the server listens. */
  onListening?: (url: string) => void;
}

/** Runs the server until SIGINT/SIGTERM (or io.signal); resolves with the exit code. */
export async function serveCommand(argv: string[], io: ServeIo = {}): Promise<number> {
  const stderr = io.stderr ?? process.stderr;
  let config: ReturnType<typeof parseServeArgs>;
  try {
    config = parseServeArgs(argv, io.env ?? process.env);
  } catch (e) {
    if (!(e instanceof ServeUsageError)) throw e;
    stderr.write(`error: ${e.message}\n\n${SERVE_USAGE}`);
    return 2;
  }
  if (config.help) {
    (io.stdout ?? process.stdout).write(SERVE_USAGE);
    return 0;
  }

  const app = createServer({
    modelSpec: config.model,
    context: config.context,
    apiKey: config.apiKey,
    maxQueue: config.maxQueue,
    servedModelName: config.servedModelName,
    logger: { level: config.logLevel },
    onDownloadProgress: stderrProgressBar(stderr),
  });

  let url: string;
  try {
    url = await app.listen({ host: config.host, port: config.port });
  } catch (e) {
    stderr.write(`error: cannot listen on ${config.host}:${config.port}: ${(e as Error).message}\n`);
    await app.close().catch(() => {});
    return 1;
  }
  io.onListening?.(url);

  // Whichever comes first: a stop signal, or the model failing to load (nothing to serve then).
  let cleanup = () => {};
  const stop = await new Promise<{ code: number; why: string }>((resolve) => {
    const onSignal = (name: string) => () => resolve({ code: 0, why: name });
    const sigint = onSignal('SIGINT');
    const sigterm = onSignal('SIGTERM');
    process.once('SIGINT', sigint);
    process.once('SIGTERM', sigterm);
    const onAbort = () => resolve({ code: 0, why: 'stop requested' });
    io.signal?.addEventListener('abort', onAbort, { once: true });
    if (io.signal?.aborted) onAbort();
    app.gptOss.host.loaded.then(() => {
      const err = app.gptOss.host.error;
      if (err) resolve({ code: 1, why: `the model could not be loaded: ${err.message}` });
    }, () => {});
    // Drop the handlers again whatever happened, so repeated runs (tests) do not pile them up.
    cleanup = () => {
      process.removeListener('SIGINT', sigint);
      process.removeListener('SIGTERM', sigterm);
      io.signal?.removeEventListener('abort', onAbort);
    };
  });
  cleanup();
  if (stop.code !== 0) stderr.write(`error: ${stop.why}\n`);
  app.log.info(`shutting down (${stop.why})`);
  // A second Ctrl-C while closing exits at once.
  const force = () => process.exit(130);
  process.once('SIGINT', force);
  try {
    await app.close();
  } finally {
    process.removeListener('SIGINT', force);
  }
  return stop.code;
}
