// Prometheus metrics, written by hand in the text exposition format (version 0.0.4): counters,
// histograms and gauges read at scrape time. No client library: the format is a few lines.
import { SPEC_RATE_BUCKETS, type BatchingState } from '../engine/api.js';

type Labels = Record<string, string>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function num(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

export interface Metric {
  render(): string;
}

export class Counter implements Metric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const entry = this.values.get(key);
    if (entry) entry.value += by;
    else this.values.set(key, { labels, value: by });
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelText(labels))?.value ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    // An unlabelled counter is always shown, so a scrape sees it at 0 before the first request.
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${labelText(labels)} ${num(value)}`);
    return lines.join('\n');
  }
}

export class Histogram implements Metric {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    /** Upper bounds, ascending; +Inf is implied. */
    readonly buckets: readonly number[],
  ) {
    this.counts = new Array<number>(buckets.length).fill(0);
  }

  observe(v: number): void {
    if (!Number.isFinite(v)) return;
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) this.counts[i]!++;
  }

  get observations(): number {
    return this.count;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((le, i) => lines.push(`${this.name}_bucket{le="${num(le)}"} ${this.counts[i]}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${num(this.sum)}`, `${this.name}_count ${this.count}`);
    return lines.join('\n');
  }
}

export class Gauge implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    /** One value, or one per label set (e.g. per model). */
    private readonly read: () => number | ReadonlyArray<{ labels: Labels; value: number }>,
  ) {}

  render(): string {
    const v = this.read();
    const samples = typeof v === 'number' ? [{ labels: {}, value: v }] : v;
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, ...samples.map((x) => `${this.name}${labelText(x.labels)} ${num(x.value)}`)].join('\n');
  }
}

/** A histogram kept elsewhere (per model, by the engine), rendered at scrape time. */
export class LiveHistogram implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
    /** Per label set: the cumulative count at each bucket, the sum and the count. */
    private readonly read: () => ReadonlyArray<{ labels: Labels; cumulative: readonly number[]; sum: number; count: number }>,
  ) {}

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const h of this.read()) {
      this.buckets.forEach((le, i) => lines.push(`${this.name}_bucket${labelText(h.labels, ['le', num(le)])} ${h.cumulative[i] ?? 0}`));
      lines.push(`${this.name}_bucket${labelText(h.labels, ['le', '+Inf'])} ${h.count}`, `${this.name}_sum${labelText(h.labels)} ${num(h.sum)}`, `${this.name}_count${labelText(h.labels)} ${h.count}`);
    }
    return lines.join('\n');
  }
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** A model's live state, read at scrape time. */
export interface ModelGauges {
  name: string;
  queueDepth: number;
  running: number;
  /** KV-cache positions the sequences hold: the engine's pages in use × its page size. */
  kvInUse: number;
  context: number;
  ready: boolean;
  /** The engine's continuous-batching state (null until it is loaded). */
  batching: BatchingState | null;
}

function kvUsageRatio(m: ModelGauges): number {
  const b = m.batching;
  const pages = b ? b.kvPagesUsed + b.kvPagesFree : 0;
  return pages > 0 ? b!.kvPagesUsed / pages : 0;
}

/** Everything the server measures. Gauges read live state, per model, through `models`. */
export class ServerMetrics {
  readonly requests = new Counter('gpt_oss_http_requests_total', 'HTTP requests answered, by route, method and status.');
  readonly promptTokens = new Counter('gpt_oss_prompt_tokens_total', 'Prompt tokens prefilled.');
  readonly generationTokens = new Counter('gpt_oss_generation_tokens_total', 'Tokens generated.');
  readonly finished = new Counter('gpt_oss_generations_total', 'Generations finished, by reason (stop, length, tool_calls, abort, error).');
  readonly routed = new Counter(
    'gpt_oss_routed_requests_total',
    'Generation requests by the model that took them and why: pinned (named), fallback (queue full), or the auto rule that decided.',
  );
  readonly timeToFirstToken = new Histogram('gpt_oss_time_to_first_token_seconds', 'From the start of the turn (prefill) to the first sampled token.', LATENCY_BUCKETS);
  readonly interTokenLatency = new Histogram('gpt_oss_inter_token_latency_seconds', 'Between consecutive sampled tokens of one generation.', LATENCY_BUCKETS);
  readonly queueTime = new Histogram('gpt_oss_queue_wait_seconds', 'Time a request waited for the engine.', LATENCY_BUCKETS);
  readonly batchSize = new Histogram('gpt_oss_batch_size', 'Sequences in each engine step (continuous batching).', [1, 2, 4, 8, 16, 32, 64, 128, 256]);
  private readonly gauges: Metric[];

  constructor(
    models: () => readonly ModelGauges[],
    /** Counters kept elsewhere (usage), rendered with these. */
    private readonly more: readonly Metric[] = [],
  ) {
    const per = (f: (m: ModelGauges) => number) => () => models().map((m) => ({ labels: { model: m.name }, value: f(m) }));
    this.gauges = [
      new Gauge('gpt_oss_queue_depth', 'Requests waiting for the engine, by model.', per((m) => m.queueDepth)),
      new Gauge('gpt_oss_requests_running', 'Requests on the engine (batched together), by model.', per((m) => m.running)),
      new Gauge('gpt_oss_sequences_running', 'Sequences in the engine\'s batch, by model.', per((m) => m.batching?.running ?? 0)),
      new Gauge('gpt_oss_sequences_waiting', 'Sequences the engine holds back (no slot or KV pages yet), by model.', per((m) => m.batching?.waiting ?? 0)),
      new Gauge('gpt_oss_kv_pages_used', 'KV-cache pages held by sequences, by model.', per((m) => m.batching?.kvPagesUsed ?? 0)),
      new Gauge('gpt_oss_kv_pages_free', 'KV-cache pages free or held only by the prefix cache, by model.', per((m) => m.batching?.kvPagesFree ?? 0)),
      new Gauge('gpt_oss_prefix_cache_hit_tokens', 'Prompt tokens served from the prefix cache since start, by model.', per((m) => m.batching?.prefixCacheHitTokens ?? 0)),
      new Gauge('gpt_oss_preemptions', 'Sequences preempted (pages freed, recomputed later) since start, by model.', per((m) => m.batching?.preemptions ?? 0)),
      new Gauge('gpt_oss_kv_cache_positions_in_use', 'KV-cache positions holding the running sequences, by model.', per((m) => m.kvInUse)),
      new Gauge('gpt_oss_kv_cache_positions', 'KV-cache positions planned (the context length), by model.', per((m) => m.context)),
      new Gauge('gpt_oss_kv_cache_usage_ratio', 'KV-cache pages held by sequences / all pages, by model.', per(kvUsageRatio)),
      new Gauge('gpt_oss_model_ready', '1 once the model is loaded, by model.', per((m) => (m.ready ? 1 : 0))),
      new Gauge('gpt_oss_spec_proposed_tokens', 'Speculative decoding: proposed tokens verified since start, by model.', per((m) => m.batching?.speculative?.proposed ?? 0)),
      new Gauge('gpt_oss_spec_accepted_tokens', 'Speculative decoding: proposed tokens accepted since start, by model.', per((m) => m.batching?.speculative?.accepted ?? 0)),
      new Gauge('gpt_oss_spec_verifications', 'Speculative decoding: decode entries that verified proposals since start, by model.', per((m) => m.batching?.speculative?.verifications ?? 0)),
    ];
    this.gauges.push(
      new LiveHistogram('gpt_oss_spec_acceptance_rate', 'Speculative decoding: accepted / proposed tokens of each verification, by model.', SPEC_RATE_BUCKETS, () =>
        models().flatMap((m) => {
          const s = m.batching?.speculative;
          return s ? [{ labels: { model: m.name }, cumulative: s.rateBuckets, sum: s.rateSum, count: s.verifications }] : [];
        }),
      ),
    );
  }

  render(): string {
    const all: Metric[] = [
      this.requests,
      this.promptTokens,
      this.generationTokens,
      this.finished,
      this.routed,
      this.timeToFirstToken,
      this.interTokenLatency,
      this.queueTime,
      this.batchSize,
      ...this.gauges,
      ...this.more,
    ];
    return `${all.map((m) => m.render()).join('\n')}\n`;
  }
}
