// `gpt-oss-webgpu bench`: load time, prefill and decode speed, the machine-independent counters,
// weight bytes per step against the floor, and decode's share of the bandwidth roofline measured
// in the same run.
import { parseArgs } from 'node:util';
import { loadEngine } from '../engine/load-model.js';
import { decodeWeightBytes } from '../engine/cost.js';
import type { ModelConfig } from '../model/config.js';
import { measureBandwidth } from './bandwidth.js';

const USAGE = `Usage: gpt-oss-webgpu bench --model <folder | hub id | synthetic:SHAPE> [--prompt-tokens N] [--gen-tokens M]
       [--context C] [--chunk K] [--json] [--profile]
  synthetic shapes: 20b, 120b (the real configs, random weights made on the GPU), tiny, mini`;

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.round((p / 100) * (sorted.length - 1))));
  return sorted[i]!;
}

/** KV bytes decode reads at position `pos`: f32 as stored, and f16 as the floor. */
function kvBytes(c: ModelConfig, pos: number, bytesPerValue: number): number {
  let keys = 0;
  for (const t of c.layerTypes) keys += t === 'sliding' ? Math.min(pos + 1, c.slidingWindow) : pos + 1;
  return keys * 2 * c.numKvHeads * c.headDim * bytesPerValue;
}

const r2 = (x: number) => Math.round(x * 100) / 100;

export async function benchCommand(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      'prompt-tokens': { type: 'string', default: '512' },
      'gen-tokens': { type: 'string', default: '128' },
      context: { type: 'string' },
      chunk: { type: 'string' },
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
  const promptTokens = Number(v['prompt-tokens']);
  const genTokens = Number(v['gen-tokens']);
  if (!(promptTokens >= 1 && genTokens >= 1)) throw new Error('--prompt-tokens and --gen-tokens must be at least 1');
  const context = v.context ? Number(v.context) : promptTokens + genTokens;
  if (context < promptTokens + genTokens) throw new Error(`--context ${context} is less than prompt + gen tokens`);

  const t0 = performance.now();
  const { engine } = await loadEngine(v.model, {
    context,
    chunk: v.chunk ? Number(v.chunk) : undefined,
    quiet: !!v.json,
  });
  await engine.gpu.device.queue.onSubmittedWorkDone();
  const loadS = (performance.now() - t0) / 1e3;
  const c = engine.config;

  // a fixed pseudo-random prompt below the special tokens
  let s = 12345;
  const prompt = Array.from({ length: promptTokens }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s % Math.min(c.vocabSize, 199998);
  });
  const stamps: number[] = [];
  const tStart = performance.now();
  const res = await engine.generate(prompt, {
    maxTokens: genTokens,
    onToken: () => {
      stamps.push(performance.now());
    },
  });
  const ttftMs = stamps[0]! - tStart;
  const steps = stamps.slice(1).map((t, i) => t - stamps[i]!);
  const sorted = [...steps].sort((a, b) => a - b);
  const medianMs = percentile(sorted, 50);
  const decodeTps = medianMs > 0 ? 1000 / medianMs : 0;

  const bw = await measureBandwidth(
    engine.gpu,
    Math.min(1 << 30, Math.floor(engine.gpu.device.limits.maxStorageBufferBindingSize / 2)),
  );
  const wb = decodeWeightBytes(c);
  const midPos = promptTokens + Math.floor(genTokens / 2);
  const minBytes = wb.min + kvBytes(c, midPos, 2);
  const rooflineTps = (bw.gbPerS * 1e9) / minBytes;
  const stats = engine.stats.decodeStep;
  const out: Record<string, unknown> = {
    model: v.model,
    adapter: { ...engine.gpu.info, backend: engine.gpu.backend },
    features: engine.gpu.features,
    subgroups_used: engine.shaders.useSubgroups,
    limits: {
      maxStorageBufferBindingSize: engine.gpu.device.limits.maxStorageBufferBindingSize,
      maxBufferSize: engine.gpu.device.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: engine.gpu.device.limits.maxComputeWorkgroupStorageSize,
      subgroupMinSize: engine.gpu.subgroupMinSize,
      subgroupMaxSize: engine.gpu.subgroupMaxSize,
    },
    memory_plan: engine.plan,
    prompt_tokens: promptTokens,
    gen_tokens: res.tokens.length,
    context,
    load_s: r2(loadS),
    prefill_tokens_per_s: r2(promptTokens / (res.prefillMs / 1e3)),
    ttft_ms: r2(ttftMs),
    decode_tokens_per_s: r2(decodeTps),
    decode_ms_per_token: { median: r2(medianMs), p10: r2(percentile(sorted, 10)), p90: r2(percentile(sorted, 90)) },
    decode_tokens_per_s_p10_p90: [r2(1000 / (percentile(sorted, 90) || Infinity)), r2(1000 / (percentile(sorted, 10) || Infinity))],
    dispatches_per_step: stats.dispatches,
    submits_per_step: stats.submits,
    readbacks_per_step: stats.readbacks,
    pipelines_created_per_step: stats.pipelinesCreated,
    weight_bytes_per_step: wb.read,
    weight_bytes_min_per_step: wb.min,
    kv_bytes_per_step_at_mid_decode: kvBytes(c, midPos, 4),
    bandwidth_gb_per_s: r2(bw.gbPerS),
    bandwidth_timer: bw.timer,
    roofline_tokens_per_s: r2(rooflineTps),
    roofline_fraction: Math.round((decodeTps / rooflineTps) * 1e4) / 1e4,
  };
  if (v.profile) {
    const perKernel = new Map<string, number>();
    for (const { label, ms } of await engine.profileDecodeStep(promptTokens + res.tokens.length - 1)) {
      const k = label.replace(/^layers\.\d+\./, '');
      perKernel.set(k, (perKernel.get(k) ?? 0) + ms);
    }
    out.profile_ms_per_step = Object.fromEntries([...perKernel].map(([k, ms]) => [k, Math.round(ms * 1e4) / 1e4]));
  }
  engine.destroy();
  if (v.json) {
    console.log(JSON.stringify(out));
  } else {
    for (const [k, val] of Object.entries(out)) console.log(`${k}: ${typeof val === 'object' ? JSON.stringify(val) : val}`);
  }
  return 0;
}
