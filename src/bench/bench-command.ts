// `gpt-oss-webgpu bench`: load time, prefill and decode speed (one stream or several at once),
// the machine-independent counters, the weight bytes the kernels fetch per step (counted from the
// dispatches that ran) against the floor computed from the config, and decode's share of the
// bandwidth roofline measured in the same run.
import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { loadEngine, speculativeFromFlags } from '../engine/load-model.js';
import { loadModelTokenizer } from '../tokenizer/index.js';
import { decodeWeightBytes, stepMacsFloor, stepWeightFloor } from './cost.js';
import type { Engine, SpeculativeStats, StepBytes } from '../engine/engine.js';
import type { ModelConfig } from '../model/config.js';
import { measureBandwidth } from './bandwidth.js';

const USAGE = `Usage: gpt-oss-webgpu bench --model <folder | hub id | synthetic:SHAPE> [--prompt-tokens N] [--gen-tokens M]
       [--concurrency N] [--context C] [--chunk K] [--layers N] [--kv-dtype f16|f32]
       [--temperature T] [--top-p P] [--top-k K] [--seed S] [--prefix-tokens N] [--json] [--profile]
       [--prompt-ids 1,2,3 | --prompt-file FILE] [--speculative ngram|draft] [--spec-tokens K]
       [--spec-ngram N..M] [--draft-model SPEC]
  synthetic shapes: 20b, 120b (the real configs, random weights made on the GPU), tiny, mini;
  --layers N keeps a synthetic shape's dimensions with N layers (alternating sliding and full);
  --concurrency N runs N streams at once (continuous batching); --prefix-tokens N also times the
  first token of a request whose first N prompt tokens are in the prefix cache, against one whose are not;
  --prompt-ids / --prompt-file give every stream this prompt (a file: a JSON array of ids, or text,
  tokenized with the model's tokenizer) instead of random ids; --speculative adds the acceptance
  counters and target_weight_bytes_per_generated_token (a measured decode step's weight bytes over
  the tokens a step yields per stream; compare a run with and one without)`;

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.round((p / 100) * (sorted.length - 1))));
  return sorted[i]!;
}

/** KV bytes decode reads at position `pos` for `bytesPerValue` (f16: 2). */
function kvBytes(c: ModelConfig, pos: number, bytesPerValue: number): number {
  let keys = 0;
  for (const t of c.layerTypes) keys += t === 'sliding' ? Math.min(pos + 1, c.slidingWindow) : pos + 1;
  return keys * 2 * c.numKvHeads * c.headDim * bytesPerValue;
}

/** The least a step over `tokens` tokens must fetch: every matrix once, each expert used once. */
const r2 = (x: number) => Math.round(x * 100) / 100;

function prompts(c: ModelConfig, n: number, len: number, seed = 12345): number[][] {
  let s = seed;
  return Array.from({ length: n }, () =>
    Array.from({ length: len }, () => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s % Math.min(c.vocabSize, 199998);
    }),
  );
}

function num(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${flag}: "${v}" is not a number`);
  return n;
}

interface StreamTimes {
  submit: number;
  stamps: number[];
}

export async function benchCommand(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      'prompt-tokens': { type: 'string', default: '512' },
      'gen-tokens': { type: 'string', default: '128' },
      concurrency: { type: 'string', default: '1' },
      context: { type: 'string' },
      chunk: { type: 'string' },
      layers: { type: 'string' },
      'kv-dtype': { type: 'string' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      'top-k': { type: 'string' },
      seed: { type: 'string' },
      'prefix-tokens': { type: 'string' },
      'prompt-ids': { type: 'string' },
      'prompt-file': { type: 'string' },
      speculative: { type: 'string' },
      'spec-tokens': { type: 'string' },
      'spec-ngram': { type: 'string' },
      'draft-model': { type: 'string' },
      json: { type: 'boolean' },
      profile: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (v.help || !v.model) {
    console.error(USAGE);
    return v.help ? 0 : 2;
  }
  const chosen = await chosenPrompt(v['prompt-ids'], v['prompt-file'], v.model);
  const promptTokens = chosen ? chosen.length : Number(v['prompt-tokens']);
  const speculative = speculativeFromFlags({ speculative: v.speculative, specTokens: v['spec-tokens'], specNgram: v['spec-ngram'], draftModel: v['draft-model'] });
  const genTokens = Number(v['gen-tokens']);
  const concurrency = Number(v.concurrency);
  if (!(promptTokens >= 1 && genTokens >= 1)) throw new Error('--prompt-tokens and --gen-tokens must be at least 1');
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new Error('--concurrency must be a positive integer');
  const kvDtype = v['kv-dtype'];
  if (kvDtype !== undefined && kvDtype !== 'f16' && kvDtype !== 'f32') throw new Error(`--kv-dtype: "${kvDtype}" is not f16 or f32`);
  const prefixTokens = num(v['prefix-tokens'], '--prefix-tokens');
  const context = num(v.context, '--context') ?? promptTokens + genTokens;
  if (context < promptTokens + genTokens) throw new Error(`--context ${context} is less than prompt + gen tokens`);
  const sampling = {
    temperature: num(v.temperature, '--temperature') ?? 0,
    topP: num(v['top-p'], '--top-p') ?? 1,
    topK: num(v['top-k'], '--top-k') ?? 0,
    seed: num(v.seed, '--seed') ?? 1,
  };

  const t0 = performance.now();
  const { engine } = await loadEngine(v.model, {
    context: Math.max(context, (prefixTokens ?? 0) + 16),
    maxBatchTokens: num(v.chunk, '--chunk'),
    maxNumSeqs: concurrency,
    layers: num(v.layers, '--layers'),
    kvDtype: kvDtype as 'f16' | 'f32' | undefined,
    quiet: !!v.json,
    speculative,
  });
  await engine.gpu.device.queue.onSubmittedWorkDone();
  const loadS = (performance.now() - t0) / 1e3;
  const c = engine.config;
  const ps = chosen ? Array.from({ length: concurrency + 1 }, () => chosen) : prompts(c, concurrency + 1, promptTokens);

  // warm-up: the measured run's shapes on other prompts (no prefix-cache hits), so every kernel
  // variant its step sizes pick is compiled (lavapipe compiles a pipeline on its first dispatch)
  const warm = prompts(c, concurrency, promptTokens, 4242);
  await Promise.all(warm.map((p) => engine.generate(p, { maxTokens: 3, stopTokens: [] })));

  // the weight bytes of one prefill step (the first chunk) and one decode step, counted as they run
  const prefillBytes = engine.countNextStep((tokens) => tokens > 1);
  // a step that decodes every stream at once, else the first that only decodes
  // (decode_step_tokens says how many it held; bench/batch-weight-bytes.mjs counts steps of a given batch size)
  // (every token of a decode step is sampled; with speculation, one that verifies proposals)
  const decodeStep = (tokens: number, seqs: number, samples: number) => tokens === samples && (speculative ? samples > seqs : samples === seqs);
  const fullDecode = engine.countNextStep((tokens, seqs, samples) => decodeStep(tokens, seqs, samples) && seqs === concurrency);
  const anyDecode = engine.countNextStep(decodeStep);
  const spec0 = engine.stats.speculative ? structuredClone(engine.stats.speculative) : null;
  const streams: StreamTimes[] = ps.slice(0, concurrency).map(() => ({ submit: 0, stamps: [] }));
  const tStart = performance.now();
  const results = await Promise.all(
    ps.slice(0, concurrency).map((prompt, i) => {
      streams[i]!.submit = performance.now();
      // No stop tokens: every stream runs its --gen-tokens, as llama-bench ignores end tokens
      // (synthetic models end an answer with <|return|> after ~30 tokens on average).
      return engine.generate(prompt, { maxTokens: genTokens, ...sampling, stopTokens: [], seed: sampling.seed + i, onToken: () => void streams[i]!.stamps.push(performance.now()) });
    }),
  );
  const wallMs = performance.now() - tStart;
  const spec = engine.stats.speculative;
  const pb = await prefillBytes;
  const db = (await Promise.race([fullDecode, Promise.resolve(null)])) ?? (await anyDecode);
  const totalTokens = results.reduce((a, r) => a + r.tokens.length, 0);
  const ttfts = streams.map((s) => s.stamps[0]! - s.submit).sort((a, b) => a - b);
  const steps = streams.flatMap((s) => s.stamps.slice(1).map((t, j) => t - s.stamps[j]!)).sort((a, b) => a - b);
  const perStream = streams.map((s) => (s.stamps.length > 1 ? ((s.stamps.length - 1) * 1000) / (s.stamps.at(-1)! - s.stamps[0]!) : 0)).sort((a, b) => a - b);
  const medianMs = percentile(steps, 50);
  // tokens verified together arrive together: with speculation the gaps between tokens say
  // nothing of the rate, each stream's tokens over its decode time do
  const decodeTps = speculative ? percentile(perStream, 50) * concurrency : medianMs > 0 ? (1000 / medianMs) * concurrency : 0;

  const bw = await measureBandwidth(engine.gpu, Math.min(1 << 30, Math.floor(engine.gpu.device.limits.maxStorageBufferBindingSize / 2)));
  const wb = decodeWeightBytes(c);
  const midPos = promptTokens + Math.floor(genTokens / 2);
  const minBytes = wb.min + kvBytes(c, midPos, 2);
  const rooflineTps = (bw.gbPerS * 1e9) / minBytes;
  const stats = engine.stats.decodeStep;
  const prefillMs = results.reduce((a, r) => Math.max(a, r.queueMs + r.prefillMs), 0);
  const out: Record<string, unknown> = {
    model: v.model,
    adapter: { ...engine.gpu.info, backend: engine.gpu.backend },
    features: engine.gpu.features,
    subgroups_used: engine.shaders.useSubgroups,
    subgroup_matrix: engine.subgroupMatrix,
    limits: {
      maxStorageBufferBindingSize: engine.gpu.device.limits.maxStorageBufferBindingSize,
      maxBufferSize: engine.gpu.device.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: engine.gpu.device.limits.maxComputeWorkgroupStorageSize,
      subgroupMinSize: engine.gpu.subgroupMinSize,
      subgroupMaxSize: engine.gpu.subgroupMaxSize,
    },
    memory_plan: engine.memoryPlan,
    prompt_tokens: promptTokens,
    gen_tokens: results[0]!.tokens.length,
    concurrency,
    sampling,
    context,
    load_s: r2(loadS),
    prefill_tokens_per_s: r2((promptTokens * concurrency) / (prefillMs / 1e3)),
    ttft_ms: r2(ttfts[0]!),
    ttft_ms_p50: r2(percentile(ttfts, 50)),
    ttft_ms_p99: r2(percentile(ttfts, 99)),
    decode_tokens_per_s: r2(decodeTps),
    decode_ms_per_token: { median: r2(medianMs), p10: r2(percentile(steps, 10)), p90: r2(percentile(steps, 90)) },
    decode_tokens_per_s_p10_p90: [r2((1000 / (percentile(steps, 90) || Infinity)) * concurrency), r2((1000 / (percentile(steps, 10) || Infinity)) * concurrency)],
    aggregate_output_tokens_per_s: r2((totalTokens * 1000) / wallMs),
    per_stream_tokens_per_s: r2(percentile(perStream, 50)),
    dispatches_per_step: stats.dispatches,
    submits_per_step: stats.submits,
    readbacks_per_step: stats.readbacks,
    pipelines_created_per_step: stats.pipelinesCreated,
    steps_planned_ahead: engine.stats.aheadSteps,
    // what the decode kernels fetched in one step (all streams), counted from the dispatches that ran
    weight_bytes_per_step: db.total,
    weight_bytes_per_step_by_kernel: db.byKernel,
    decode_step_tokens: db.tokens,
    // that step's floor: every matrix once, each expert its routing used once
    weight_bytes_min_per_step: stepWeightFloor(c, db),
    // the batch-1 floor, computed from the config (performance.md; the roofline's)
    weight_bytes_min_per_token_step: wb.min,
    // multiply-adds of that step's weight products (padding and idle tile rows included), and the minimum
    macs_per_step: db.macs,
    macs_min_per_step: stepMacsFloor(c, db),
    macs_per_step_by_kernel: db.macsByKernel,
    ...specCounters(spec0, spec, db),
    prefill_step_tokens: pb.tokens,
    prefill_weight_bytes_per_token: Math.round(pb.total / pb.tokens),
    // every matrix once and each expert the chunk used once, over the chunk's tokens
    prefill_weight_bytes_per_token_floor: Math.round(stepWeightFloor(c, pb) / pb.tokens),
    prefill_macs_per_token: Math.round(pb.macs / pb.tokens),
    prefill_macs_min_per_token: Math.round(stepMacsFloor(c, pb) / pb.tokens),
    kv_bytes_per_step_at_mid_decode: kvBytes(c, midPos, kvDtype === 'f32' ? 4 : 2),
    bandwidth_gb_per_s: r2(bw.gbPerS),
    bandwidth_timer: bw.timer,
    roofline_tokens_per_s: r2(rooflineTps),
    roofline_fraction: Math.round(((decodeTps / concurrency) / rooflineTps) * 1e4) / 1e4,
  };
  if (prefixTokens) out.prefix_cache = await prefixTtft(engine, c, prefixTokens);
  if (v.profile) {
    const perKernel = (list: { label: string; ms: number }[]) => {
      const m = new Map<string, number>();
      for (const { label, ms } of list) {
        const k = label.replace(/^layers\.\d+\./, '');
        m.set(k, (m.get(k) ?? 0) + ms);
      }
      return Object.fromEntries([...m].map(([k, ms]) => [k, Math.round(ms * 1e4) / 1e4]));
    };
    // a short run of a prompt already seen (its prefill comes from the prefix cache) profiles a
    // decode step; a prompt not seen before, the first prefill chunk
    const decode = engine.profileNextStep((tokens, seqs, samples) => tokens === seqs && samples === seqs);
    await engine.generate(ps[0]!, { maxTokens: 2 });
    out.profile_ms_per_step = perKernel(await decode);
    const prefill = engine.profileNextStep((tokens) => tokens > 1);
    await engine.generate(prompts(c, 1, promptTokens, 777)[0]!, { maxTokens: 1 });
    out.prefill_profile_tokens = Math.min(promptTokens, engine.memoryPlan.chunk);
    out.prefill_profile_ms = perKernel(await prefill);
  }
  engine.destroy();
  if (v.json) {
    console.log(JSON.stringify(out));
  } else {
    for (const [k, val] of Object.entries(out)) console.log(`${k}: ${typeof val === 'object' ? JSON.stringify(val) : val}`);
  }
  return 0;
}

/** --prompt-ids or --prompt-file: the prompt every stream runs, or undefined for random ids. */
async function chosenPrompt(ids: string | undefined, file: string | undefined, model: string | undefined): Promise<number[] | undefined> {
  if (ids !== undefined && file !== undefined) throw new Error('--prompt-ids and --prompt-file: give one');
  let out: number[] | undefined;
  if (ids !== undefined) out = ids.split(',').map((t) => Number(t.trim()));
  if (file !== undefined) {
    const text = await readFile(file, 'utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (Array.isArray(parsed)) out = parsed as number[];
    else {
      // text: the model's own tokenizer (a synthetic model's is the generated o200k_harmony one)
      const dir = model && !model.startsWith('synthetic:') ? model : undefined;
      out = (await loadModelTokenizer(dir)).encodeOrdinary(text);
    }
  }
  if (out && !(out.length && out.every((t) => Number.isInteger(t) && t >= 0))) throw new Error(`${ids !== undefined ? '--prompt-ids' : '--prompt-file'}: not a non-empty list of token ids`);
  return out;
}

/**
 * Speculative decoding's counters over the measured run: acceptance, tokens a stream gets per
 * step, and the measured step's weight bytes per token it yields (without speculation: per stream).
 */
function specCounters(before: SpeculativeStats | null, after: SpeculativeStats | null, step: StepBytes): Record<string, unknown> {
  if (!before || !after) return { target_weight_bytes_per_generated_token: Math.round(step.total / step.sequences) };
  const d = (k: 'proposed' | 'accepted' | 'verifications' | 'entries' | 'yielded') => after[k] - before[k];
  const perStep = d('entries') ? d('yielded') / d('entries') : 1;
  return {
    speculative: { method: after.method, proposed: d('proposed'), accepted: d('accepted'), verifications: d('verifications'), accepted_histogram: after.acceptedHistogram.map((n, i) => n - (before.acceptedHistogram[i] ?? 0)) },
    spec_acceptance_rate: d('proposed') ? Math.round((d('accepted') / d('proposed')) * 1e4) / 1e4 : 0,
    accepted_tokens_per_step: r2(perStep),
    target_weight_bytes_per_generated_token: Math.round(step.total / (step.sequences * perStep)),
  };
}

/** Time to first token of a request whose first `n` tokens are cached, against the same uncached. */
async function prefixTtft(engine: Engine, c: ModelConfig, n: number): Promise<Record<string, number>> {
  const [shared, tailA, tailB] = prompts(c, 3, n, 777);
  const ttft = async (prompt: number[]) => {
    const t = performance.now();
    let first = 0;
    const r = await engine.generate(prompt, { maxTokens: 1, onToken: () => void (first = performance.now() - t) });
    return { ms: first, cached: r.cachedTokens };
  };
  const cold = await ttft([...shared!, ...tailA!.slice(0, 16)]);
  const warm = await ttft([...shared!, ...tailB!.slice(0, 16)]);
  return { prefix_tokens: n, ttft_ms_uncached: r2(cold.ms), ttft_ms_cached: r2(warm.ms), cached_tokens: warm.cached, uncached_cached_tokens: cold.cached };
}
