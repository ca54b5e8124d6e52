// The flags of `gpt-oss-webgpu serve`, in one table: each row gives the flag, its environment
// variable, its help, how its value parses and its default. The usage text, the argument parser
// and the environment mapping are all generated from it.
import { parseArgs } from 'node:util';
import { SPEC_FLAGS_HELP, speculativeFromFlags, type SpeculativeFlags } from '../engine/load-model.js';
import { DEFAULT_MAX_BATCH_TOKENS, DEFAULT_MAX_NUM_SEQS, DEFAULT_MAX_QUEUE, DEFAULT_MAX_TOKENS } from './app.js';
import { parseByteSize } from './gpu-memory.js';
import { defaultModelName, duplicateName, MODEL_NAME } from './models.js';
import { parseReasoningKey } from './reasoning-seal.js';
import { redactUrl } from './store/index.js';

export const DEFAULT_SHUTDOWN_GRACE_SECONDS = 30;

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
  /** The chat page at GET / (--no-ui: off). */
  ui: boolean;
  strictParams?: boolean;
  reasoningKey?: string;
  corsOrigins?: string[];
  /** Absent: memory. */
  responseStore?: string;
  /** Absent: DEFAULT_RESPONSE_TTL_SECONDS. */
  responseTtlSeconds?: number;
  /** Absent: reload. */
  onDeviceLost?: 'reload' | 'exit';
  testHooks?: boolean;
  /** Speculative decoding's flags, checked together by speculativeFromFlags. */
  speculative?: string;
  specTokens?: number;
  specNgram?: string;
  draftModel?: string;
}

export class ServeUsageError extends Error {
  override name = 'ServeUsageError';
}

type Parse<T> = (text: string, flag: string) => T;

interface Flag<K extends keyof ServeConfig = keyof ServeConfig> {
  flag: string;
  /** What the value looks like in the usage (`N`, `FILE`). */
  arg: string;
  env: string;
  key: K;
  help: string;
  parse: Parse<ServeConfig[K]>;
  default?: ServeConfig[K];
  /** A switch: given alone (`--no-ui`), its variable set to 1/true/yes; parse gets "true". */
  boolean?: true;
}

const text: Parse<string> = (t) => t;

const reasoningKey: Parse<string> = (t, flag) => {
  try {
    parseReasoningKey(t);
  } catch (e) {
    throw new ServeUsageError(`--${flag}: ${(e as Error).message}`);
  }
  return t;
};

const responseStore: Parse<string> = (t, flag) => {
  if (t !== 'memory' && !/^rediss?:\/\/./.test(t)) throw new ServeUsageError(`--${flag}: "${redactUrl(t)}" is neither memory nor a redis:// URL`);
  return t;
};

const DURATION_UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400 };

/** `30d`, `12h`, `90m`, `3600s` or `3600` (seconds), as whole seconds >= 1. */
const duration: Parse<number> = (t, flag) => {
  const m = /^(\d+)([smhd]?)$/.exec(t.trim());
  const n = m ? Number(m[1]) * DURATION_UNITS[m[2]!]! : NaN;
  if (!(n >= 1 && Number.isSafeInteger(n))) throw new ServeUsageError(`--${flag}: "${t}" is not a duration (e.g. 30d, 12h, 90m, 3600)`);
  return n;
};

const oneOf =
  <T extends string>(...values: T[]): Parse<T> =>
  (t, flag) => {
    if (!(values as string[]).includes(t)) throw new ServeUsageError(`--${flag}: "${t}" is not ${values.join(' or ')}`);
    return t as T;
  };

/** A switch's variable: 1/true/yes or 0/false/no. */
const onOff = (t: string, flag: string): boolean => {
  if (/^(1|true|yes|on)$/i.test(t.trim())) return true;
  if (/^(0|false|no|off)$/i.test(t.trim())) return false;
  throw new ServeUsageError(`--${flag}: "${t}" is not one of 1, true, yes, 0, false, no`);
};

const integer =
  (min: number, max = Number.MAX_SAFE_INTEGER): Parse<number> =>
  (t, flag) => {
    if (!/^\d+$/.test(t.trim())) throw new ServeUsageError(`--${flag}: "${t}" is not a whole number`);
    const n = Number(t);
    if (n < min || n > max) throw new ServeUsageError(`--${flag}: ${n} is outside [${min}, ${max}]`);
    return n;
  };

const seconds: Parse<number> = (t, flag) => {
  const n = Number(t.trim());
  if (t.trim() === '' || !Number.isFinite(n) || n < 0) throw new ServeUsageError(`--${flag}: "${t}" is not a number of seconds >= 0`);
  return n;
};

const size =
  (example: string): Parse<number> =>
  (t, flag) => {
    const bytes = parseByteSize(t);
    if (bytes === null) throw new ServeUsageError(`--${flag}: "${t}" is not a size (e.g. ${example}, or bytes)`);
    return bytes;
  };

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const logLevel: Parse<string> = (t, flag) => {
  if (!LOG_LEVELS.includes(t)) throw new ServeUsageError(`--${flag}: "${t}" is not one of ${LOG_LEVELS.join(', ')}`);
  return t;
};

/** `NAME=SPEC` when the part before the first `=` is a name (paths and hub ids have none). */
function modelArg(t: string): ModelArg {
  const eq = t.indexOf('=');
  const name = eq > 0 ? t.slice(0, eq) : '';
  if (eq > 0 && MODEL_NAME.test(name) && !name.includes('/')) {
    const spec = t.slice(eq + 1).trim();
    if (spec === '') throw new ServeUsageError(`--model: "${t}" names no model after "="`);
    return { name, spec };
  }
  if (t.trim() === '') throw new ServeUsageError('--model: empty');
  return { spec: t.trim() };
}

/** --model may be repeated; its variable takes a comma-separated list. */
const MODEL_FLAG = {
  flag: 'model',
  arg: '[NAME=]SPEC',
  env: 'GPT_OSS_MODEL',
  help: 'model folder, Hugging Face id, or synthetic:tiny (default openai/gpt-oss-20b, downloaded to the HF cache); repeat it to serve several (env: comma-separated); NAME is the id clients use',
  default: 'openai/gpt-oss-20b',
} as const;

const flag = <K extends keyof ServeConfig>(f: Flag<K>): Flag => f as unknown as Flag;

export const SERVE_FLAGS: readonly Flag[] = [
  flag({ flag: 'routing', arg: 'FILE', env: 'GPT_OSS_ROUTING', key: 'routingFile', parse: text, help: 'JSON rule of model "auto" (default: first model is small, second large; see README)' }),
  flag({ flag: 'gpu-memory', arg: 'SIZE', env: 'GPT_OSS_GPU_MEMORY', key: 'gpuMemory', parse: size('80GB, 79.6GiB'), help: "GPU memory to plan all models against, e.g. 80GB (default: nvidia-smi's; unknown: not checked)" }),
  flag({ flag: 'host', arg: 'HOST', env: 'GPT_OSS_HOST', key: 'host', parse: text, default: '127.0.0.1', help: 'address to listen on (default 127.0.0.1)' }),
  flag({ flag: 'port', arg: 'N', env: 'GPT_OSS_PORT', key: 'port', parse: integer(0, 65535), default: 8000, help: 'port (default 8000; 0 picks a free one)' }),
  flag({ flag: 'api-key', arg: 'KEY', env: 'GPT_OSS_API_KEY', key: 'apiKey', parse: text, help: 'require "Authorization: Bearer KEY"' }),
  flag({ flag: 'api-keys', arg: 'NAME:KEY,...', env: 'GPT_OSS_API_KEYS', key: 'apiKeys', parse: text, help: 'named API keys; usage is counted per name' }),
  flag({ flag: 'api-keys-file', arg: 'FILE', env: 'GPT_OSS_API_KEYS_FILE', key: 'apiKeysFile', parse: text, help: 'named API keys, one NAME:KEY per line' }),
  flag({ flag: 'admin-key', arg: 'KEY', env: 'GPT_OSS_ADMIN_KEY', key: 'adminKey', parse: text, help: 'opens GET /admin/usage (JSON usage and cost)' }),
  flag({ flag: 'prices', arg: 'FILE', env: 'GPT_OSS_PRICES', key: 'pricesFile', parse: text, help: 'MODEL INPUT OUTPUT [CACHED] per line, $ per 1M tokens, for the cost counters' }),
  flag({ flag: 'context', arg: 'N', env: 'GPT_OSS_CONTEXT', key: 'context', parse: integer(1), help: "positions a sequence may reach (default: the model's maximum)" }),
  flag({ flag: 'max-num-seqs', arg: 'N', env: 'GPT_OSS_MAX_NUM_SEQS', key: 'maxNumSeqs', parse: integer(1), help: `sequences each engine runs at once, batched (default ${DEFAULT_MAX_NUM_SEQS})` }),
  flag({ flag: 'max-batch-tokens', arg: 'N', env: 'GPT_OSS_MAX_BATCH_TOKENS', key: 'maxBatchTokens', parse: integer(1), help: `tokens per engine step: decode tokens plus prompt chunks (default ${DEFAULT_MAX_BATCH_TOKENS})` }),
  flag({ flag: 'kv-memory', arg: 'SIZE', env: 'GPT_OSS_KV_MEMORY', key: 'kvMemory', parse: size('16GB, 12GiB'), help: 'KV cache of each model, e.g. 16GB (default: two full contexts, or 4096 positions per sequence when that is more); the memory plan shows the pages' }),
  flag({ flag: 'speculative', arg: 'WHAT', env: 'GPT_OSS_SPECULATIVE', key: 'speculative', parse: oneOf('ngram', 'draft'), help: SPEC_FLAGS_HELP.speculative }),
  flag({ flag: 'spec-tokens', arg: 'K', env: 'GPT_OSS_SPEC_TOKENS', key: 'specTokens', parse: integer(1, 16), help: SPEC_FLAGS_HELP.specTokens }),
  flag({ flag: 'spec-ngram', arg: 'N..M', env: 'GPT_OSS_SPEC_NGRAM', key: 'specNgram', parse: text, help: SPEC_FLAGS_HELP.specNgram }),
  flag({ flag: 'draft-model', arg: 'SPEC', env: 'GPT_OSS_DRAFT_MODEL', key: 'draftModel', parse: text, help: SPEC_FLAGS_HELP.draftModel }),
  flag({ flag: 'max-queue', arg: 'N', env: 'GPT_OSS_MAX_QUEUE', key: 'maxQueue', parse: integer(0), default: DEFAULT_MAX_QUEUE, help: `requests that may wait when the engines are full (default ${DEFAULT_MAX_QUEUE})` }),
  flag({ flag: 'max-tokens-default', arg: 'N', env: 'GPT_OSS_MAX_TOKENS_DEFAULT', key: 'maxTokensDefault', parse: integer(1), default: DEFAULT_MAX_TOKENS, help: `output tokens when a request sets no max_tokens (default ${DEFAULT_MAX_TOKENS}; never more than the context left)` }),
  flag({ flag: 'max-prompt-tokens', arg: 'N', env: 'GPT_OSS_MAX_PROMPT_TOKENS', key: 'maxPromptTokens', parse: integer(1), help: 'largest prompt a request may send (default: the context)' }),
  flag({ flag: 'shutdown-grace-seconds', arg: 'S', env: 'GPT_OSS_SHUTDOWN_GRACE_SECONDS', key: 'shutdownGraceSeconds', parse: seconds, default: DEFAULT_SHUTDOWN_GRACE_SECONDS, help: `on SIGTERM/SIGINT, the time requests in flight have to finish before they are stopped (default ${DEFAULT_SHUTDOWN_GRACE_SECONDS}); the process exits at the latest 5 s after that` }),
  flag({ flag: 'served-model-name', arg: 'NAME', env: 'GPT_OSS_SERVED_MODEL_NAME', key: 'servedModelName', parse: text, help: 'id of a single model (default: the --model value)' }),
  flag({ flag: 'no-ui', arg: '', env: 'GPT_OSS_NO_UI', key: 'ui', boolean: true, parse: (t, f) => !onOff(t, f), default: true, help: 'no chat page at GET / (default: served)' }),
  flag({ flag: 'strict-params', arg: '', env: 'GPT_OSS_STRICT_PARAMS', key: 'strictParams', boolean: true, parse: onOff, help: 'refuse unknown request fields with a 400, as api.openai.com does (default: ignored, named in the x-gpt-oss-ignored-params header, logged once)' }),
  flag({ flag: 'reasoning-key', arg: 'KEY', env: 'GPT_OSS_REASONING_KEY', key: 'reasoningKey', parse: reasoningKey, help: '32-byte key (64 hex digits or base64) sealing the reasoning handed to stateless clients (Codex); give every replica the same (default: random per process)' }),
  flag({ flag: 'cors-origins', arg: 'LIST', env: 'GPT_OSS_CORS_ORIGINS', key: 'corsOrigins', parse: (t) => t.split(',').map((o) => o.trim()).filter((o) => o !== ''), help: 'origins browsers may call from, comma-separated, or * (default: none)' }),
  flag({ flag: 'response-store', arg: 'URL', env: 'GPT_OSS_RESPONSE_STORE', key: 'responseStore', parse: responseStore, help: 'where Responses are kept: memory (default; lost on restart, this process only) or redis://HOST:6379/0 (shared by replicas; must be reachable at start)' }),
  flag({ flag: 'response-ttl', arg: 'TIME', env: 'GPT_OSS_RESPONSE_TTL', key: 'responseTtlSeconds', parse: duration, help: 'how long Redis keeps a stored response, e.g. 30d, 12h, 3600 (seconds; default 30d)' }),
  flag({ flag: 'on-device-lost', arg: 'WHAT', env: 'GPT_OSS_ON_DEVICE_LOST', key: 'onDeviceLost', parse: oneOf('reload', 'exit'), help: 'a lost GPU device: reload (new device, weights loaded again; default) or exit (status 1)' }),
  flag({ flag: 'test-hooks', arg: 'on', env: 'GPT_OSS_TEST_HOOKS', key: 'testHooks', parse: (t, f) => oneOf('on', 'off', '1', '0', 'true', 'false')(t, f) === 'on' || t === '1' || t === 'true', help: 'chaos testing only: POST /test-hooks/device-lost' }),
  flag({ flag: 'log-level', arg: 'LEVEL', env: 'GPT_OSS_LOG_LEVEL', key: 'logLevel', parse: logLevel, default: 'info', help: 'fatal, error, warn, info, debug, trace (default info)' }),
];

const LEFT = 28;
const HELP_WIDTH = 50;

function wrap(s: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of s.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  return [...lines, line];
}

function usageRow(f: { flag: string; arg: string; env: string; help: string }): string {
  const left = f.arg ? `  --${f.flag} ${f.arg}` : `  --${f.flag}`;
  const pad = ' '.repeat(LEFT);
  const [first, ...rest] = wrap(f.help, HELP_WIDTH);
  const head = `${left.padEnd(LEFT - 1)} ${first!.padEnd(HELP_WIDTH)} ${f.env}`;
  return [head, ...rest.map((l) => pad + l)].join('\n');
}

export const SERVE_USAGE = `Usage: gpt-oss-webgpu serve [flags]

Serves an OpenAI-compatible API (/v1/chat/completions, /v1/completions, /v1/responses,
/v1/models, /health, /metrics). Every flag can also be set with the environment variable shown.

${[MODEL_FLAG, ...SERVE_FLAGS].map(usageRow).join('\n')}
`;

/** Flags over environment variables over defaults. Throws ServeUsageError on bad input. */
export function parseServeArgs(argv: string[], env: Record<string, string | undefined> = process.env): ServeConfig & { help: boolean } {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    const options = Object.fromEntries(SERVE_FLAGS.map((f) => [f.flag, { type: f.boolean ? ('boolean' as const) : ('string' as const) }]));
    ({ values } = parseArgs({
      args: argv,
      options: { ...options, [MODEL_FLAG.flag]: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new ServeUsageError((e as Error).message);
  }
  const config: Record<string, unknown> = {};
  for (const f of SERVE_FLAGS) {
    const given = values[f.flag];
    const fromEnv = env[f.env];
    const raw = typeof given === 'string' ? given : given === true ? 'true' : fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
    if (raw !== undefined) {
      const value = f.parse(raw, f.flag);
      // a switch turned off by its variable leaves an optional field out, as if not given
      if (!(f.boolean && value === false && f.default === undefined)) config[f.key] = value;
    }
    else if (f.default !== undefined) config[f.key] = f.default;
  }
  const given = values[MODEL_FLAG.flag] as string[] | undefined;
  const envModels = env[MODEL_FLAG.env];
  const models = (given?.length ? given : envModels ? envModels.split(',') : [MODEL_FLAG.default]).map(modelArg);
  const dup = duplicateName(models.map((m) => m.name ?? defaultModelName(m.spec)));
  if (dup) throw new ServeUsageError(`--model: "${dup}" is given twice; name them (NAME=SPEC)`);
  if (config['servedModelName'] !== undefined && (models.length > 1 || models[0]!.name)) {
    throw new ServeUsageError('--served-model-name names a single model given without a name; use --model NAME=SPEC');
  }
  try {
    speculativeFromFlags(config as SpeculativeFlags);
  } catch (e) {
    throw new ServeUsageError((e as Error).message);
  }
  return { help: values['help'] === true, models, ...(config as Omit<ServeConfig, 'models'>) };
}

/** Each flag's environment variable, by flag name. */
export const FLAGS: Readonly<Record<string, string>> = Object.fromEntries([MODEL_FLAG, ...SERVE_FLAGS].map((f) => [f.flag, f.env]));
