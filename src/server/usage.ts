// Who used what: named API keys, a price table, and per key and per model counters of requests,
// prompt, cached and completion tokens and cost. Metrics and the admin endpoint show key names,
// never the keys themselves.
import { createHash, timingSafeEqual } from 'node:crypto';
import { ConfigFileError, contentLines } from './config-files.js';
import { Counter } from './metrics.js';
import { duplicateName } from './models.js';

export interface ApiKey {
  name: string;
  key: string;
}

/** The key name requests are counted under when the server takes no API keys. */
export const ANONYMOUS = 'anonymous';
const NAME = /^[A-Za-z0-9][\w.-]{0,63}$/;

/**
 * `NAME:KEY` per line (`#` comments). Names: letters, digits, `_ . -`, up to 64; keys: at least 8
 * characters without spaces. `source` names the file (or variable) in errors, with the line.
 */
export function parseApiKeys(text: string, source: string, unit = 'line'): ApiKey[] {
  const keys: ApiKey[] = [];
  for (const { n, line } of contentLines(text)) {
    const at = `${source} ${unit} ${n}`;
    const colon = line.indexOf(':');
    if (colon < 0) throw new ConfigFileError(`${at}: expected NAME:KEY`);
    const name = line.slice(0, colon).trim();
    const key = line.slice(colon + 1).trim();
    if (!NAME.test(name)) throw new ConfigFileError(`${at}: "${name}" is not a key name (letters, digits, _ . -; up to 64)`);
    if (name === ANONYMOUS) throw new ConfigFileError(`${at}: "${ANONYMOUS}" is reserved (requests without keys are counted under it)`);
    if (key.length < 8 || /\s/.test(key)) throw new ConfigFileError(`${at}: the key of "${name}" must be at least 8 characters without spaces`);
    if (keys.some((k) => k.name === name)) throw new ConfigFileError(`${at}: the name "${name}" is used twice`);
    if (keys.some((k) => k.key === key)) throw new ConfigFileError(`${at}: the key of "${name}" is also another name's key`);
    keys.push({ name, key });
  }
  if (keys.length === 0) throw new ConfigFileError(`${source}: no keys (expected NAME:KEY lines)`);
  return keys;
}

/** --api-key's key (named "default") and the named keys: the one check that every name is used once. */
export function apiKeyList(apiKey: string | undefined, named: readonly ApiKey[]): ApiKey[] {
  const keys = [...(apiKey !== undefined ? [{ name: 'default', key: apiKey }] : []), ...named];
  const dup = duplicateName(keys.map((k) => k.name));
  if (dup) throw new ConfigFileError(`the API key name "${dup}" is given twice (--api-key is "default", --api-keys, --api-keys-file)`);
  return keys;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Finds the key a request presented. Every key is compared, in constant time (hashes make the
 * lengths equal), whether or not an earlier one matched: the time says nothing about the keys.
 */
export function matchApiKey(keys: readonly ApiKey[], presented: string): ApiKey | null {
  const d = digest(presented);
  let found: ApiKey | null = null;
  for (const k of keys) if (timingSafeEqual(digest(k.key), d) && !found) found = k;
  return found;
}

export interface Price {
  /** $ per 1M prompt tokens not served from a cache. */
  input: number;
  /** $ per 1M completion tokens. */
  output: number;
  /** $ per 1M cached prompt tokens (default: the input price). */
  cachedInput: number;
}

export type PriceTable = ReadonlyMap<string, Price>;

/**
 * One model per line: `MODEL INPUT OUTPUT [CACHED_INPUT]`, prices in $ per 1M tokens (`#`
 * comments). Every MODEL must be one the server serves; unpriced models cost 0.
 */
export function parsePrices(text: string, source: string, models: readonly string[]): PriceTable {
  const table = new Map<string, Price>();
  for (const { n, line } of contentLines(text)) {
    const at = `${source} line ${n}`;
    const fields = line.split(/\s+/);
    if (fields.length < 3 || fields.length > 4) throw new ConfigFileError(`${at}: expected MODEL INPUT OUTPUT [CACHED_INPUT] ($ per 1M tokens), got ${fields.length} fields`);
    const [model, ...prices] = fields as [string, ...string[]];
    if (!models.includes(model)) throw new ConfigFileError(`${at}: "${model}" is not a served model (${models.join(', ')})`);
    if (table.has(model)) throw new ConfigFileError(`${at}: "${model}" is priced twice`);
    const [input, output, cachedInput = input] = prices.map((p) => {
      if (!/^\d+(\.\d+)?$/.test(p)) throw new ConfigFileError(`${at}: "${p}" is not a price ($ per 1M tokens, a number >= 0)`);
      return Number(p);
    }) as [number, number, number?];
    table.set(model, { input, output, cachedInput });
  }
  return table;
}

export interface TurnUsage {
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
}

/** $ for one turn at `price` (none: 0). */
export function costOf(u: TurnUsage, price: Price | undefined): number {
  if (!price) return 0;
  return ((u.promptTokens - u.cachedTokens) * price.input + u.cachedTokens * price.cachedInput + u.completionTokens * price.output) / 1e6;
}

export interface UsageRow {
  key: string;
  model: string;
  requests: number;
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  cost_usd: number;
}

/** The counters, as Prometheus counters labelled {key, model}; also read back as rows. */
export class UsageLedger {
  readonly requests = new Counter('gpt_oss_usage_requests_total', 'Generations run, by API key name and model.');
  readonly promptTokens = new Counter('gpt_oss_usage_prompt_tokens_total', 'Prompt tokens, by API key name and model.');
  readonly cachedTokens = new Counter('gpt_oss_usage_cached_tokens_total', 'Prompt tokens served from a cache, by API key name and model.');
  readonly completionTokens = new Counter('gpt_oss_usage_completion_tokens_total', 'Completion tokens, by API key name and model.');
  readonly cost = new Counter('gpt_oss_usage_cost_dollars_total', 'Cost in $ by the price table, by API key name and model.');
  private readonly seen = new Map<string, { key: string; model: string }>();

  constructor(private readonly prices: PriceTable) {}

  record(key: string, model: string, u: TurnUsage): void {
    const labels = { key, model };
    this.seen.set(`${key}\n${model}`, labels);
    this.requests.inc(labels);
    this.promptTokens.inc(labels, u.promptTokens);
    this.cachedTokens.inc(labels, u.cachedTokens);
    this.completionTokens.inc(labels, u.completionTokens);
    this.cost.inc(labels, costOf(u, this.prices.get(model)));
  }

  rows(): UsageRow[] {
    return [...this.seen.values()].map((l) => ({
      ...l,
      requests: this.requests.get(l),
      prompt_tokens: this.promptTokens.get(l),
      cached_tokens: this.cachedTokens.get(l),
      completion_tokens: this.completionTokens.get(l),
      cost_usd: this.cost.get(l),
    }));
  }

  get metrics(): Counter[] {
    return [this.requests, this.promptTokens, this.cachedTokens, this.completionTokens, this.cost];
  }

  get priceList(): Record<string, Price> {
    return Object.fromEntries(this.prices);
  }
}
