// `gpt-oss-webgpu generate`: one prompt of token ids through the engine, printing the generated
// ids (or one JSON object), optionally the prefill logits and the per-step counters. The model is
// resolved like every command's: a checkpoint folder, a hub id or synthetic:SHAPE.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadEngine, speculativeFromFlags, type SpeculativeChoice } from '../engine/load-model.js';
import type { MemoryPlan } from '../engine/engine.js';

export const GENERATE_USAGE = `Usage: gpt-oss-webgpu generate --model SPEC (--prompt-ids 1,2,3 | --prompt-ids-file FILE | --requests FILE) [flags]

  --model SPEC           checkpoint folder (Hugging Face or original layout), hub id, or
                         synthetic:SHAPE (tiny, mini, 20b, 120b: random weights)
  --prompt-ids 1,2,3     prompt token ids
  --prompt-ids-file FILE prompt token ids as a JSON array (long prompts)
  --max-tokens N         tokens to generate (default 32)
  --temperature T        0 = greedy (default 0); --top-p P, --top-k K, --seed S
  --stop-ids 1,2         extra stop token ids (the model's eos ids always stop)
  --context N            positions a sequence may reach (default: prompt + max tokens)
  --max-batch-tokens N   tokens per step: the prefill chunk (default 512; --chunk is the same)
  --kv-dtype f16|f32     KV cache storage (default f16)
  --requests FILE        run the requests in FILE together through the batching engine: a JSON
                         array of {"prompt_ids": [...], "max_tokens": N, "temperature": T,
                         "top_p": P, "top_k": K, "seed": S, "arrival_step": K} (all but prompt_ids
                         optional), each joining at its arrival step; prints a JSON array, in
                         input order, of {"generated_ids": [...], "finish_reason": "..."}
  --max-num-seqs N       sequences running at once (default: the number of requests)
  --logits-out FILE      write the prefill logits [prompt, vocab] as F32 safetensors
  --json                 print one JSON object (and no memory plan)
  --stats                add dispatch/submit/readback counters per decode step
  --speculative ngram|draft  speculative decoding (same tokens as without it; --json adds its counters);
                         --spec-tokens K (default 4), --spec-ngram N..M (default 1..4),
                         --draft-model SPEC (a model with the same tokenizer; implies draft)
`;

/** What one `generate` run does, from its flags. */
export interface GenerateConfig {
  model: string;
  /** The prompt's ids, the file holding them, or a file of requests (read by generateCommand). */
  prompt: { ids: number[] } | { file: string } | { requests: string };
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  seed: number;
  stopIds: number[];
  context?: number;
  chunk?: number;
  maxNumSeqs?: number;
  kvDtype?: 'f16' | 'f32';
  logitsOut?: string;
  speculative?: SpeculativeChoice;
  json: boolean;
  stats: boolean;
  help: boolean;
}

export class GenerateUsageError extends Error {
  override name = 'GenerateUsageError';
}

const OPTIONS = {
  model: { type: 'string' },
  'prompt-ids': { type: 'string' },
  'prompt-ids-file': { type: 'string' },
  'max-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-p': { type: 'string' },
  'top-k': { type: 'string' },
  seed: { type: 'string' },
  'stop-ids': { type: 'string' },
  context: { type: 'string' },
  chunk: { type: 'string' },
  'max-batch-tokens': { type: 'string' },
  'kv-dtype': { type: 'string' },
  requests: { type: 'string' },
  'max-num-seqs': { type: 'string' },
  'logits-out': { type: 'string' },
  speculative: { type: 'string' },
  'spec-tokens': { type: 'string' },
  'spec-ngram': { type: 'string' },
  'draft-model': { type: 'string' },
  json: { type: 'boolean' },
  stats: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function tokenIds(text: string, what: string): number[] {
  const out = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  for (const v of out) if (!Number.isInteger(v) || v < 0) throw new GenerateUsageError(`${what}: "${v}" is not a token id`);
  return out;
}

function num(v: string | undefined, what: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new GenerateUsageError(`${what}: "${v}" is not a number`);
  return n;
}

/** Throws GenerateUsageError on bad flags. */
export function parseGenerateArgs(argv: string[]): GenerateConfig {
  let v: { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };
  try {
    ({ values: v } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new GenerateUsageError((e as Error).message);
  }
  const flags = { json: v.json === true, stats: v.stats === true, help: v.help === true };
  if (flags.help) return { model: '', prompt: { ids: [] }, maxTokens: 0, temperature: 0, topP: 1, topK: 0, seed: 0, stopIds: [], ...flags };
  if (!v.model) throw new GenerateUsageError('generate needs --model');
  let prompt: GenerateConfig['prompt'];
  if (v.requests !== undefined) prompt = { requests: v.requests };
  else if (v['prompt-ids-file'] !== undefined) prompt = { file: v['prompt-ids-file'] };
  else if (v['prompt-ids'] !== undefined) prompt = { ids: tokenIds(v['prompt-ids'], '--prompt-ids') };
  else throw new GenerateUsageError('generate needs --prompt-ids, --prompt-ids-file or --requests');
  if (v.requests !== undefined && v['logits-out'] !== undefined) throw new GenerateUsageError('--logits-out takes one prompt, not --requests');
  const kvDtype = v['kv-dtype'];
  if (kvDtype !== undefined && kvDtype !== 'f16' && kvDtype !== 'f32') throw new GenerateUsageError(`--kv-dtype: "${kvDtype}" is not f16 or f32`);
  const chunk = v['max-batch-tokens'] ?? v.chunk;
  let speculative: SpeculativeChoice | undefined;
  try {
    speculative = speculativeFromFlags({ speculative: v.speculative, specTokens: v['spec-tokens'], specNgram: v['spec-ngram'], draftModel: v['draft-model'] });
  } catch (e) {
    throw new GenerateUsageError((e as Error).message);
  }
  if (speculative && v['logits-out'] !== undefined) throw new GenerateUsageError('--logits-out reads prefill logits; it does not go with --speculative');
  return {
    model: v.model,
    prompt,
    maxTokens: num(v['max-tokens'], '--max-tokens', 32),
    temperature: num(v.temperature, '--temperature', 0),
    topP: num(v['top-p'], '--top-p', 1),
    topK: num(v['top-k'], '--top-k', 0),
    seed: num(v.seed, '--seed', 0),
    stopIds: v['stop-ids'] !== undefined ? tokenIds(v['stop-ids'], '--stop-ids') : [],
    ...(v.context !== undefined ? { context: num(v.context, '--context', 0) } : {}),
    ...(chunk !== undefined ? { chunk: num(chunk, '--max-batch-tokens', 512) } : {}),
    ...(v['max-num-seqs'] !== undefined ? { maxNumSeqs: num(v['max-num-seqs'], '--max-num-seqs', 1) } : {}),
    ...(kvDtype !== undefined ? { kvDtype } : {}),
    ...(v['logits-out'] !== undefined ? { logitsOut: v['logits-out'] } : {}),
    ...(speculative ? { speculative } : {}),
    ...flags,
  };
}

export interface GenerateIo {
  stdout?: { write(s: string): unknown };
  stderr?: { write(s: string): unknown };
}

const round = (x: number) => Math.round(x * 100) / 100;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

function planLine(p: MemoryPlan): string {
  return (
    `memory plan: weights ${mib(p.weights)}, KV cache ${mib(p.kv)} (${p.context} positions), rope ${mib(p.rope)}, ` +
    `activations ${mib(p.activations)} (chunk ${p.chunk}); total ${mib(p.total)}\n`
  );
}

/** Runs `generate` with the arguments that follow it; resolves with the exit code. */
export async function generateCommand(argv: string[], io: GenerateIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  let c: GenerateConfig;
  let prompt: number[];
  let requests: BatchRequest[] | null = null;
  try {
    c = parseGenerateArgs(argv);
    if (c.help) {
      stdout.write(GENERATE_USAGE);
      return 0;
    }
    if ('requests' in c.prompt) {
      requests = parseRequests(JSON.parse(await readFile(c.prompt.requests, 'utf8')), c);
      prompt = requests[0]!.prompt;
    } else if ('file' in c.prompt) {
      const parsed: unknown = JSON.parse(await readFile(c.prompt.file, 'utf8'));
      if (!Array.isArray(parsed)) throw new GenerateUsageError('--prompt-ids-file must hold a JSON array of token ids');
      prompt = tokenIds(parsed.join(','), '--prompt-ids-file');
    } else {
      prompt = c.prompt.ids;
    }
    if (!prompt.length) throw new GenerateUsageError('the prompt is empty');
  } catch (e) {
    if (!(e instanceof GenerateUsageError)) throw e;
    stderr.write(`error: ${e.message}\n\n${GENERATE_USAGE}`);
    return 2;
  }
  if (requests) return runRequests(c, requests, stdout, stderr);

  const { engine } = await loadEngine(c.model, {
    context: c.context ?? prompt.length + Math.max(c.maxTokens, 1),
    maxBatchTokens: c.chunk,
    kvDtype: c.kvDtype,
    allLogits: c.logitsOut !== undefined,
    quiet: c.json,
    speculative: c.speculative,
    // Printed before anything is allocated, so a plan that does not fit is seen first.
    onPlan: (p) => {
      if (!c.json) stderr.write(planLine(p));
    },
  });
  try {
    let prefillLogits: Float32Array | undefined;
    const res = await engine.generate(prompt, {
      maxTokens: c.maxTokens,
      temperature: c.temperature,
      topP: c.topP,
      topK: c.topK,
      seed: c.seed,
      stopTokens: [...engine.config.eosTokenIds, ...c.stopIds],
      onPrefillLogits: c.logitsOut !== undefined ? (l) => (prefillLogits = l) : undefined,
    });
    if (c.logitsOut !== undefined && prefillLogits) {
      const { writeSafetensors } = await import('../model/safetensors.js');
      await writeSafetensors(c.logitsOut, [
        { name: 'logits', dtype: 'F32', shape: [prompt.length, engine.config.vocabSize], data: prefillLogits },
      ]);
    }
    const decodeTps = res.tokens.length > 1 ? ((res.tokens.length - 1) * 1000) / res.decodeMs : 0;
    const out: Record<string, unknown> = {
      prompt_ids: prompt,
      generated_ids: res.tokens,
      finish_reason: res.finishReason,
      prefill_ms: round(res.prefillMs),
      decode_ms: round(res.decodeMs),
      decode_tokens_per_s: round(decodeTps),
    };
    const sp = engine.stats.speculative;
    if (sp) out.speculative = { ...sp, acceptance_rate: sp.proposed ? round(sp.accepted / sp.proposed) : 0 };
    if (c.stats) {
      out.stats = {
        decode_step: engine.stats.decodeStep,
        prefill: engine.stats.prefill,
        adapter: engine.gpu.info,
        subgroups: engine.shaders.useSubgroups,
      };
    }
    if (c.json) {
      stdout.write(`${JSON.stringify(out)}\n`);
    } else {
      stdout.write(`generated ${res.tokens.length} tokens (${res.finishReason}): ${res.tokens.join(',')}\n`);
      stdout.write(`prefill ${round(res.prefillMs)} ms, decode ${round(decodeTps)} tokens/s\n`);
      if (c.stats) stdout.write(`${JSON.stringify(out.stats, null, 2)}\n`);
    }
    return 0;
  } finally {
    engine.destroy();
  }
}

/** One entry of a --requests file. */
interface BatchRequest {
  prompt: number[];
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  seed: number;
  arrivalStep: number;
}

function parseRequests(v: unknown, c: GenerateConfig): BatchRequest[] {
  if (!Array.isArray(v) || !v.length) throw new GenerateUsageError('--requests must hold a non-empty JSON array of requests');
  return v.map((r: unknown, i) => {
    const o = r as Record<string, unknown>;
    const what = `--requests [${i}]`;
    if (typeof r !== 'object' || r === null || !Array.isArray(o.prompt_ids)) throw new GenerateUsageError(`${what}: needs "prompt_ids", an array of token ids`);
    const known = new Set(['prompt_ids', 'max_tokens', 'temperature', 'top_p', 'top_k', 'seed', 'arrival_step']);
    for (const k of Object.keys(o)) if (!known.has(k)) throw new GenerateUsageError(`${what}: unknown field "${k}"`);
    const n = (k: string, dflt: number, int = false) => {
      const x = o[k] ?? dflt;
      if (typeof x !== 'number' || !Number.isFinite(x) || (int && (!Number.isInteger(x) || x < 0))) throw new GenerateUsageError(`${what}.${k}: ${JSON.stringify(o[k])} is not a valid number`);
      return x;
    };
    const prompt = tokenIds((o.prompt_ids as unknown[]).join(','), `${what}.prompt_ids`);
    if (!prompt.length) throw new GenerateUsageError(`${what}: the prompt is empty`);
    return {
      prompt,
      maxTokens: n('max_tokens', c.maxTokens, true),
      temperature: n('temperature', c.temperature),
      topP: n('top_p', c.topP),
      topK: n('top_k', c.topK, true),
      seed: n('seed', c.seed, true),
      arrivalStep: n('arrival_step', 0, true),
    };
  });
}

/** --requests: every request through one batching engine, each joining at its arrival step. */
async function runRequests(c: GenerateConfig, requests: BatchRequest[], stdout: { write(s: string): unknown }, stderr: { write(s: string): unknown }): Promise<number> {
  const { engine } = await loadEngine(c.model, {
    context: c.context ?? Math.max(...requests.map((r) => r.prompt.length + Math.max(r.maxTokens, 1))),
    maxBatchTokens: c.chunk,
    maxNumSeqs: c.maxNumSeqs ?? requests.length,
    kvDtype: c.kvDtype,
    quiet: c.json,
    speculative: c.speculative,
    onPlan: (p) => {
      if (!c.json) stderr.write(planLine(p));
    },
  });
  try {
    const stop = [...engine.config.eosTokenIds, ...c.stopIds];
    const results = await Promise.all(
      requests.map(async (r) => {
        await engine.afterSteps(r.arrivalStep);
        return engine.generate(r.prompt, { maxTokens: r.maxTokens, temperature: r.temperature, topP: r.topP, topK: r.topK, seed: r.seed, stopTokens: stop });
      }),
    );
    const out = results.map((r) => ({ generated_ids: r.tokens, finish_reason: r.finishReason, cached_tokens: r.cachedTokens }));
    if (c.json) stdout.write(`${JSON.stringify(c.stats ? { results: out, stats: engine.stats } : out)}\n`);
    else for (const [i, r] of out.entries()) stdout.write(`request ${i}: ${r.generated_ids.length} tokens (${r.finish_reason}): ${r.generated_ids.join(',')}\n`);
    return 0;
  } finally {
    engine.destroy();
  }
}
