// `gpt-oss-webgpu serve`: the OpenAI-compatible server. It listens at once and loads the model in
// the background (GET /health answers 503 until it is ready), then runs until SIGINT or SIGTERM
// and closes gracefully: new requests get 503 at once, those in flight have a grace period to
// finish, then what still runs is stopped and the models freed. Several models may be served
// (--model NAME=SPEC, repeated). A bad keys, prices or routing file stops it before it listens,
// with the file and line named.
import { parseArgs } from 'node:util';
import { stderrProgressBar } from '../model/hub.js';
import { closeGracefully, createServer, DEFAULT_MAX_BATCH_TOKENS, DEFAULT_MAX_NUM_SEQS, DEFAULT_MAX_QUEUE, DEFAULT_MAX_TOKENS, defaultModelName, type ServerOptions } from './app.js';
import { ConfigFileError, readConfigFile } from './config-files.js';
import { detectGpuMemory, parseByteSize } from './gpu-memory.js';
import { parseRoutingConfig } from './routing.js';
import { DEFAULT_RESPONSE_TTL_SECONDS, openResponseStore, redactUrl, type ResponseStore } from './store/index.js';
import { parseApiKeys, parsePrices, type ApiKey } from './usage.js';

export { createServer, type ServerOptions } from './app.js';

export const DEFAULT_SHUTDOWN_GRACE_SECONDS = 30;

export const SERVE_USAGE = `Usage: gpt-oss-webgpu serve [flags]

Serves an OpenAI-compatible API (/v1/chat/completions, /v1/completions, /v1/responses,
/v1/models, /health, /metrics). Every flag can also be set with the environment variable shown.

  --model [NAME=]SPEC       model folder, Hugging Face id, or synthetic:tiny    GPT_OSS_MODEL
                            (default openai/gpt-oss-20b, downloaded to the HF cache); repeat it
                            to serve several (env: comma-separated); NAME is the id clients use
  --routing FILE            JSON rule of model "auto" (default: first model is  GPT_OSS_ROUTING
                            small, second large; see README)
  --gpu-memory SIZE         GPU memory to plan all models against, e.g. 80GB    GPT_OSS_GPU_MEMORY
                            (default: nvidia-smi's; unknown: not checked)
  --host HOST               address to listen on (default 127.0.0.1)            GPT_OSS_HOST
  --port N                  port (default 8000; 0 picks a free one)             GPT_OSS_PORT
  --api-key KEY             require "Authorization: Bearer KEY"                 GPT_OSS_API_KEY
  --api-keys NAME:KEY,...   named API keys; usage is counted per name           GPT_OSS_API_KEYS
  --api-keys-file FILE      named API keys, one NAME:KEY per line               GPT_OSS_API_KEYS_FILE
  --admin-key KEY           opens GET /admin/usage (JSON usage and cost)        GPT_OSS_ADMIN_KEY
  --prices FILE             MODEL INPUT OUTPUT [CACHED] per line, $ per 1M      GPT_OSS_PRICES
                            tokens, for the cost counters
  --context N               positions a sequence may reach (default: the model's GPT_OSS_CONTEXT
                            maximum)
  --max-num-seqs N          sequences each engine runs at once, batched         GPT_OSS_MAX_NUM_SEQS
                            (default ${DEFAULT_MAX_NUM_SEQS})
  --max-batch-tokens N      tokens per engine step: decode tokens plus prompt   GPT_OSS_MAX_BATCH_TOKENS
                            chunks (default ${DEFAULT_MAX_BATCH_TOKENS})
  --kv-memory SIZE          KV cache of each model, e.g. 16GB (default: two     GPT_OSS_KV_MEMORY
                            full contexts, or 4096 positions per sequence when
                            that is more); the memory plan shows the pages
  --max-queue N             requests that may wait when the engines are full    GPT_OSS_MAX_QUEUE
                            (default ${DEFAULT_MAX_QUEUE})
  --max-tokens-default N    output tokens when a request sets no max_tokens     GPT_OSS_MAX_TOKENS_DEFAULT
                            (default ${DEFAULT_MAX_TOKENS}; never more than the context left)
  --max-prompt-tokens N     largest prompt a request may send (default: the     GPT_OSS_MAX_PROMPT_TOKENS
                            context)
  --shutdown-grace-seconds S  on SIGTERM/SIGINT, the time requests in flight    GPT_OSS_SHUTDOWN_GRACE_SECONDS
                            have to finish before they are stopped (default ${DEFAULT_SHUTDOWN_GRACE_SECONDS})
  --served-model-name NAME  id of a single model (default: the --model value)   GPT_OSS_SERVED_MODEL_NAME
  --response-store URL      where Responses are kept: memory (default; lost on  GPT_OSS_RESPONSE_STORE
                            restart, this process only) or redis://HOST:6379/0
                            (shared by replicas; must be reachable at start)
  --response-ttl TIME       how long Redis keeps a stored response, e.g. 30d,   GPT_OSS_RESPONSE_TTL
                            12h, 3600 (seconds; default 30d)
  --on-device-lost WHAT     a lost GPU device: reload (new device, weights      GPT_OSS_ON_DEVICE_LOST
                            loaded again; default) or exit (status 1)
  --test-hooks on           chaos testing only: POST /test-hooks/device-lost    GPT_OSS_TEST_HOOKS
  --log-level LEVEL         fatal, error, warn, info, debug, trace (default info) GPT_OSS_LOG_LEVEL
`;

/** One --model: `SPEC` or `NAME=SPEC`. */
export interface ModelArg {
  name?: string;
  spec: string;
}

export interface ServeConfig {
  models: ModelArg[];
  routingFile?: string;
  gpuMemory?: number;
  host: string;
  port: number;
  apiKey?: string;
  apiKeys?: string;
  apiKeysFile?: string;
  adminKey?: string;
  pricesFile?: string;
  context?: number;
  maxNumSeqs?: number;
  maxBatchTokens?: number;
  kvMemory?: number;
  maxQueue: number;
  maxTokensDefault: number;
  maxPromptTokens?: number;
  shutdownGraceSeconds: number;
  servedModelName?: string;
  logLevel: string;
  /** Absent: memory. */
  responseStore?: string;
  /** Absent: DEFAULT_RESPONSE_TTL_SECONDS. */
  responseTtlSeconds?: number;
  /** Absent: reload. */
  onDeviceLost?: 'reload' | 'exit';
  testHooks?: boolean;
}

export class ServeUsageError extends Error {
  override name = 'ServeUsageError';
}

export const FLAGS = {
  model: 'GPT_OSS_MODEL',
  routing: 'GPT_OSS_ROUTING',
  'gpu-memory': 'GPT_OSS_GPU_MEMORY',
  host: 'GPT_OSS_HOST',
  port: 'GPT_OSS_PORT',
  'api-key': 'GPT_OSS_API_KEY',
  'api-keys': 'GPT_OSS_API_KEYS',
  'api-keys-file': 'GPT_OSS_API_KEYS_FILE',
  'admin-key': 'GPT_OSS_ADMIN_KEY',
  prices: 'GPT_OSS_PRICES',
  context: 'GPT_OSS_CONTEXT',
  'max-num-seqs': 'GPT_OSS_MAX_NUM_SEQS',
  'max-batch-tokens': 'GPT_OSS_MAX_BATCH_TOKENS',
  'kv-memory': 'GPT_OSS_KV_MEMORY',
  'max-queue': 'GPT_OSS_MAX_QUEUE',
  'max-tokens-default': 'GPT_OSS_MAX_TOKENS_DEFAULT',
  'max-prompt-tokens': 'GPT_OSS_MAX_PROMPT_TOKENS',
  'shutdown-grace-seconds': 'GPT_OSS_SHUTDOWN_GRACE_SECONDS',
  'served-model-name': 'GPT_OSS_SERVED_MODEL_NAME',
  'log-level': 'GPT_OSS_LOG_LEVEL',
  'response-store': 'GPT_OSS_RESPONSE_STORE',
  'response-ttl': 'GPT_OSS_RESPONSE_TTL',
  'on-device-lost': 'GPT_OSS_ON_DEVICE_LOST',
  'test-hooks': 'GPT_OSS_TEST_HOOKS',
} as const;

const MODEL_NAME = /^[A-Za-z0-9][\w.:-]{0,127}$/;

/** `NAME=SPEC` when the part before the first `=` is a name (paths and hub ids have none). */
function modelArg(text: string): ModelArg {
  const eq = text.indexOf('=');
  const name = eq > 0 ? text.slice(0, eq) : '';
  if (eq > 0 && MODEL_NAME.test(name) && !name.includes('/')) {
    const spec = text.slice(eq + 1).trim();
    if (spec === '') throw new ServeUsageError(`--model: "${text}" names no model after "="`);
    return { name, spec };
  }
  if (text.trim() === '') throw new ServeUsageError('--model: empty');
  return { spec: text.trim() };
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function integer(text: string, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(text.trim())) throw new ServeUsageError(`--${flag}: "${text}" is not a whole number`);
  const n = Number(text);
  if (n < min || n > max) throw new ServeUsageError(`--${flag}: ${n} is outside [${min}, ${max}]`);
  return n;
}

function seconds(text: string, flag: string): number {
  const n = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(n) || n < 0) throw new ServeUsageError(`--${flag}: "${text}" is not a number of seconds >= 0`);
  return n;
}

const DURATION_UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400 };

/** `30d`, `12h`, `90m`, `3600s` or `3600` (seconds), as whole seconds >= 1. */
function duration(text: string, flag: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(text.trim());
  const n = m ? Number(m[1]) * DURATION_UNITS[m[2]!]! : NaN;
  if (!(n >= 1 && Number.isSafeInteger(n))) throw new ServeUsageError(`--${flag}: "${text}" is not a duration (e.g. 30d, 12h, 90m, 3600)`);
  return n;
}

/** Flags over environment variables over defaults. Throws ServeUsageError on bad input. */
export function parseServeArgs(argv: string[], env: Record<string, string | undefined> = process.env): ServeConfig & { help: boolean } {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: 'string' as const, multiple: k === 'model' }]));
    ({ values } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new ServeUsageError((e as Error).message);
  }
  const get = (flag: Exclude<keyof typeof FLAGS, 'model'>): string | undefined => {
    const v = values[flag];
    if (typeof v === 'string') return v;
    const e = env[FLAGS[flag]];
    return e === undefined || e === '' ? undefined : e;
  };
  const port = get('port');
  const context = get('context');
  const maxQueue = get('max-queue');
  const maxNumSeqs = get('max-num-seqs');
  const maxBatchTokens = get('max-batch-tokens');
  const kvMemory = get('kv-memory');
  const kvBytes = kvMemory === undefined ? undefined : parseByteSize(kvMemory);
  if (kvBytes === null) throw new ServeUsageError(`--kv-memory: "${kvMemory}" is not a size (e.g. 16GB, 12GiB, or bytes)`);
  const maxTokensDefault = get('max-tokens-default');
  const maxPromptTokens = get('max-prompt-tokens');
  const grace = get('shutdown-grace-seconds');
  const logLevel = get('log-level') ?? 'info';
  if (!LOG_LEVELS.has(logLevel)) throw new ServeUsageError(`--log-level: "${logLevel}" is not one of ${[...LOG_LEVELS].join(', ')}`);
  const apiKey = get('api-key');
  const responseStore = get('response-store');
  if (responseStore !== undefined && responseStore !== 'memory' && !/^rediss?:\/\/./.test(responseStore)) {
    throw new ServeUsageError(`--response-store: "${redactUrl(responseStore)}" is neither memory nor a redis:// URL`);
  }
  const ttl = get('response-ttl');
  const onDeviceLost = get('on-device-lost');
  if (onDeviceLost !== undefined && onDeviceLost !== 'reload' && onDeviceLost !== 'exit') throw new ServeUsageError(`--on-device-lost: "${onDeviceLost}" is not reload or exit`);
  const testHooks = get('test-hooks');
  if (testHooks !== undefined && !['on', 'off', '1', '0', 'true', 'false'].includes(testHooks)) throw new ServeUsageError(`--test-hooks: "${testHooks}" is not on or off`);
  const given = values['model'] as unknown as string[] | undefined;
  const envModels = env[FLAGS.model];
  const models = (given?.length ? given : envModels ? envModels.split(',') : ['openai/gpt-oss-20b']).map(modelArg);
  const names = models.map((m) => m.name ?? defaultModelName(m.spec));
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new ServeUsageError(`--model: "${dup}" is given twice; name them (NAME=SPEC)`);
  const served = get('served-model-name');
  if (served !== undefined && (models.length > 1 || models[0]!.name)) {
    throw new ServeUsageError('--served-model-name names a single model given without a name; use --model NAME=SPEC');
  }
  const gpuMemory = get('gpu-memory');
  const gpuBytes = gpuMemory === undefined ? undefined : parseByteSize(gpuMemory);
  if (gpuBytes === null) throw new ServeUsageError(`--gpu-memory: "${gpuMemory}" is not a size (e.g. 80GB, 79.6GiB, or bytes)`);
  const optional = (key: keyof ServeConfig, flag: Exclude<keyof typeof FLAGS, 'model'>) => {
    const v = get(flag);
    return v === undefined ? {} : { [key]: v };
  };
  return {
    help: values['help'] === true,
    models,
    ...optional('routingFile', 'routing'),
    ...(gpuBytes !== undefined ? { gpuMemory: gpuBytes } : {}),
    host: get('host') ?? '127.0.0.1',
    port: port === undefined ? 8000 : integer(port, 'port', 0, 65535),
    ...(apiKey !== undefined ? { apiKey } : {}),
    ...optional('apiKeys', 'api-keys'),
    ...optional('apiKeysFile', 'api-keys-file'),
    ...optional('adminKey', 'admin-key'),
    ...optional('pricesFile', 'prices'),
    ...(context !== undefined ? { context: integer(context, 'context', 1) } : {}),
    ...(maxNumSeqs !== undefined ? { maxNumSeqs: integer(maxNumSeqs, 'max-num-seqs', 1) } : {}),
    ...(maxBatchTokens !== undefined ? { maxBatchTokens: integer(maxBatchTokens, 'max-batch-tokens', 1) } : {}),
    ...(kvBytes !== undefined ? { kvMemory: kvBytes } : {}),
    maxQueue: maxQueue === undefined ? DEFAULT_MAX_QUEUE : integer(maxQueue, 'max-queue', 0),
    maxTokensDefault: maxTokensDefault === undefined ? DEFAULT_MAX_TOKENS : integer(maxTokensDefault, 'max-tokens-default', 1),
    ...(maxPromptTokens !== undefined ? { maxPromptTokens: integer(maxPromptTokens, 'max-prompt-tokens', 1) } : {}),
    shutdownGraceSeconds: grace === undefined ? DEFAULT_SHUTDOWN_GRACE_SECONDS : seconds(grace, 'shutdown-grace-seconds'),
    ...(served !== undefined ? { servedModelName: served } : {}),
    logLevel,
    ...(responseStore !== undefined ? { responseStore } : {}),
    ...(ttl !== undefined ? { responseTtlSeconds: duration(ttl, 'response-ttl') } : {}),
    ...(onDeviceLost !== undefined ? { onDeviceLost: onDeviceLost as 'reload' | 'exit' } : {}),
    ...(testHooks !== undefined ? { testHooks: ['on', '1', 'true'].includes(testHooks) } : {}),
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

  let files: Pick<ServerOptions, 'apiKeys' | 'prices' | 'routing'>;
  try {
    files = readServeFiles(config);
  } catch (e) {
    if (!(e instanceof ConfigFileError)) throw e;
    stderr.write(`error: ${e.message}\n`);
    return 2;
  }
  // Redis must answer before the server listens: a replica without its store would 404 every
  // conversation another replica started.
  let store: ResponseStore;
  try {
    store = await openResponseStore(config.responseStore, { ttlSeconds: config.responseTtlSeconds ?? DEFAULT_RESPONSE_TTL_SECONDS, log: (level, msg) => stderr.write(`${level}: ${msg}\n`) });
  } catch (e) {
    stderr.write(`error: ${(e as Error).message}\n`);
    return 1;
  }
  const app = createServer({
    responseStore: store,
    onDeviceLost: config.onDeviceLost ?? 'reload',
    testHooks: config.testHooks ?? false,
    models: config.models.map((m) => ({ name: m.name ?? config.servedModelName, spec: m.spec })),
    ...files,
    gpuMemory: config.gpuMemory ?? detectGpuMemory() ?? undefined,
    context: config.context,
    maxNumSeqs: config.maxNumSeqs,
    maxBatchTokens: config.maxBatchTokens,
    kvMemory: config.kvMemory,
    apiKey: config.apiKey,
    adminKey: config.adminKey,
    maxQueue: config.maxQueue,
    maxTokensDefault: config.maxTokensDefault,
    maxPromptTokens: config.maxPromptTokens,
    logger: { level: config.logLevel },
    onDownloadProgress: stderrProgressBar(stderr),
  });

  let url: string;
  try {
    url = await app.listen({ host: config.host, port: config.port });
  } catch (e) {
    stderr.write(`error: cannot listen on ${config.host}:${config.port}: ${(e as Error).message}\n`);
    await app.close().catch(() => {});
    await store.close();
    return 1;
  }
  io.onListening?.(url);

  // Whichever comes first: a stop signal, or the model failing to load (nothing to serve then).
  const env = io.env ?? process.env;
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
    // A model that failed to load, or lost its device under --on-device-lost exit.
    for (const m of app.gptOss.models) {
      m.host.onFailure((err) => {
        const which = app.gptOss.models.length > 1 ? `the model ${m.name}` : 'the model';
        resolve({ code: 1, why: `${which} ${m.host.losses ? 'is gone' : 'could not be loaded'}: ${err.message}` });
      });
    }
    // Under npm (npx, npm exec, npm run) this process runs below `sh -c`, which does not pass
    // SIGTERM or SIGINT on: stopping npm kills the shell and would leave the server running. The
    // shell going away (this process is handed to another parent) counts as SIGTERM.
    const parent = process.ppid;
    const orphaned = env['npm_lifecycle_event'] !== undefined
      ? setInterval(() => {
          if (process.ppid !== parent) resolve({ code: 0, why: 'npm, which started this server, stopped' });
        }, 200)
      : undefined;
    orphaned?.unref();
    // Drop the handlers again whatever happened, so repeated runs (tests) do not pile them up.
    cleanup = () => {
      process.removeListener('SIGINT', sigint);
      process.removeListener('SIGTERM', sigterm);
      io.signal?.removeEventListener('abort', onAbort);
      clearInterval(orphaned);
    };
  });
  cleanup();
  if (stop.code !== 0) stderr.write(`error: ${stop.why}\n`);
  const graceMs = stop.code === 0 ? config.shutdownGraceSeconds * 1000 : 0;
  app.log.info(`shutting down (${stop.why}); requests in flight have ${graceMs / 1000} s to finish`);
  // A second signal while closing exits at once.
  const force = (signal: NodeJS.Signals) => process.exit(signal === 'SIGINT' ? 130 : 143);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  try {
    await closeGracefully(app, graceMs);
  } finally {
    process.removeListener('SIGINT', force);
    process.removeListener('SIGTERM', force);
    await store.close();
  }
  return stop.code;
}
/** The keys, prices and routing files (and inline keys) a config names, parsed. */
export function readServeFiles(config: ServeConfig): Pick<ServerOptions, 'apiKeys' | 'prices' | 'routing'> {
  const names = config.models.map((m) => m.name ?? config.servedModelName ?? defaultModelName(m.spec));
  const apiKeys: ApiKey[] = [];
  if (config.apiKeysFile !== undefined) apiKeys.push(...parseApiKeys(readConfigFile(config.apiKeysFile, 'API keys'), config.apiKeysFile));
  if (config.apiKeys !== undefined) apiKeys.push(...parseApiKeys(config.apiKeys.split(',').join('\n'), '--api-keys', 'entry'));
  // --api-key is the key named "default".
  const named = [...(config.apiKey !== undefined ? ['default'] : []), ...apiKeys.map((k) => k.name)];
  const dup = named.find((n, i) => named.indexOf(n) !== i);
  if (dup) throw new ConfigFileError(`the API key name "${dup}" is given twice (--api-key is "default", --api-keys, --api-keys-file)`);
  return {
    ...(apiKeys.length ? { apiKeys } : {}),
    ...(config.pricesFile !== undefined ? { prices: parsePrices(readConfigFile(config.pricesFile, 'prices'), config.pricesFile, names) } : {}),
    ...(config.routingFile !== undefined
      ? (() => {
          if (names.length < 2) throw new ConfigFileError(`${config.routingFile}: routing needs at least two --model`);
          return { routing: parseRoutingConfig(readConfigFile(config.routingFile, 'routing'), config.routingFile, names) };
        })()
      : {}),
  };
}
