// `gpt-oss-webgpu serve`: the OpenAI-compatible server. It listens at once and loads the model in
// the background (GET /health answers 503 until it is ready), then runs until SIGINT or SIGTERM
// and closes gracefully: new requests get 503 at once, those in flight have a grace period to
// finish, then what still runs is stopped and the models freed. Run as the CLI, the process exits
// at the latest 5 s after the grace period, whatever still hangs. Several models may be served
// (--model NAME=SPEC, repeated). A bad keys, prices or routing file stops it before it listens,
// with the file and line named. The flags are in serve-flags.ts.
import { speculativeFromFlags } from '../engine/load-model.js';
import type { FastifyInstance } from 'fastify';
import { stderrProgressBar } from '../model/hub.js';
import { closeGracefully, createServer, type ServerOptions } from './app.js';
import { ConfigFileError, readConfigFile } from './config-files.js';
import { detectGpuMemory } from './gpu-memory.js';
import { exitSafeDestination } from './log-destination.js';
import { defaultModelName } from './models.js';
import { parseRoutingConfig } from './routing.js';
import { parseServeArgs, SERVE_USAGE, ServeUsageError, type ServeConfig } from './serve-flags.js';
import { DEFAULT_RESPONSE_TTL_SECONDS, openResponseStore, type ResponseStore } from './store/index.js';
import { apiKeyList, parseApiKeys, parsePrices, type ApiKey } from './usage.js';

export { createServer, type ServerOptions } from './app.js';
export { DEFAULT_SHUTDOWN_GRACE_SECONDS, FLAGS, parseServeArgs, SERVE_FLAGS, SERVE_USAGE, ServeUsageError, type ModelArg, type ServeConfig } from './serve-flags.js';

/** Seconds past the grace period after which a stopping server process exits whatever still runs. */
export const SHUTDOWN_DEADLINE_EXTRA_SECONDS = 5;

export interface ServeIo {
  env?: Record<string, string | undefined>;
  stdout?: { write(s: string): unknown };
  stderr?: { write(s: string): unknown; isTTY?: boolean };
  /** Stops the server like SIGTERM does (tests, embedding). */
  signal?: AbortSignal;
  /** Told the address once the server listens. */
  onListening?: (url: string) => void;
  /**
   * Exit the process (code 1) at the latest SHUTDOWN_DEADLINE_EXTRA_SECONDS after the grace
   * period that the first stop signal starts, logging what was still pending. The timer stays
   * armed after serveCommand returns, so it also bounds the CLI's own exit. The CLI sets it;
   * embedders and in-process tests do not (it would end their process).
   */
  exitAtDeadline?: boolean;
}

/** What a shutdown may still wait for, for the log line of a missed deadline. */
function pending(app: FastifyInstance, stage: string): Record<string, unknown> {
  return {
    stage,
    models: app.gptOss.models.all.map((m) => ({
      name: m.name,
      status: m.host.status,
      requestsRunning: m.queue.running,
      requestsWaiting: m.queue.queueDepth,
      engineBusy: m.host.engine?.isBusy ?? false,
    })),
    // Node's own list of what keeps the event loop alive (sockets, timers, file system calls).
    resources: process.getActiveResourcesInfo(),
  };
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
  const log = exitSafeDestination(1);
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
    speculative: speculativeFromFlags(config),
    adminKey: config.adminKey,
    maxQueue: config.maxQueue,
    maxTokensDefault: config.maxTokensDefault,
    maxPromptTokens: config.maxPromptTokens,
    logger: { level: config.logLevel, stream: log.stream },
    ui: config.ui,
    strictParams: config.strictParams,
    reasoningKey: config.reasoningKey,
    corsOrigins: config.corsOrigins,
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
    const all = app.gptOss.models.all;
    for (const m of all) {
      m.host.onFailure((err) => {
        const which = all.length > 1 ? `the model ${m.name}` : 'the model';
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
  let stage = 'grace period';
  if (io.exitAtDeadline) {
    const deadlineMs = graceMs + SHUTDOWN_DEADLINE_EXTRA_SECONDS * 1000;
    // Unref'd: a shutdown that finishes sooner exits on its own; this fires only if one hangs.
    setTimeout(() => {
      app.log.error({ pending: pending(app, stage), droppedLogLines: log.dropped }, `shutdown did not finish within ${deadlineMs / 1000} s; exiting`);
      process.exit(1);
    }, deadlineMs).unref();
  }
  // A second signal while closing exits at once.
  const force = (signal: NodeJS.Signals) => process.exit(signal === 'SIGINT' ? 130 : 143);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  try {
    await closeGracefully(app, graceMs, () => (stage = 'closing: requests stopped, waiting for the engines to finish their step'));
    stage = 'exiting after the close';
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
  const keys = apiKeyList(config.apiKey, apiKeys);
  return {
    ...(keys.length ? { apiKeys: keys } : {}),
    ...(config.pricesFile !== undefined ? { prices: parsePrices(readConfigFile(config.pricesFile, 'prices'), config.pricesFile, names) } : {}),
    ...(config.routingFile !== undefined
      ? (() => {
          if (names.length < 2) throw new ConfigFileError(`${config.routingFile}: routing needs at least two --model`);
          return { routing: parseRoutingConfig(readConfigFile(config.routingFile, 'routing'), config.routingFile, names) };
        })()
      : {}),
  };
}
