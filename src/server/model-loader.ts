// Turns `--model` into a loaded engine and its tokenizer: a local folder, a Hugging Face hub id
// (downloaded into the HF cache with a progress bar), or `synthetic:NAME` (random weights, for
// smoke runs and tests). hostModels sets up every model of a server: planned against the GPU's
// memory first, then loaded one at a time in the background, each behind its admission queue.
import type { FastifyBaseLogger } from 'fastify';
import type { MemoryPlan } from '../engine/engine.js';
import { loadEngine, type LoadEngineOptions as EngineLoadOptions, type SpeculativeChoice } from '../engine/load-model.js';
import { acquireGpu } from '../gpu/device.js';
import type { DownloadProgress } from '../model/hub.js';
import { loadModelTokenizer, type HarmonyTokenizer } from '../tokenizer/index.js';
import { AdmissionQueue } from './admission-queue.js';
import { maskVocabSize, warmConstraintIndex } from './constraints.js';
import { checkPlansFit, formatBytes } from './gpu-memory.js';
import { ModelHost, type DeviceLostPolicy, type ReadyModel, type ServingEngine } from './model-host.js';
import { defaultModelName, type ServedModel } from './models.js';

export interface LoadModelOptions {
  /** KV-cache positions; default the model's maximum. */
  context?: number;
  /** Continuous batching: sequences at once, tokens per step, KV-cache bytes (engine defaults when absent). */
  maxNumSeqs?: number;
  maxBatchTokens?: number;
  kvMemory?: number;
  /** Speculative decoding (n-gram, or a draft model loaded beside the model). */
  speculative?: SpeculativeChoice;
  onDownloadProgress?: (p: DownloadProgress) => void;
  log?: (msg: string) => void;
}

export interface LoadedModel {
  engine: ServingEngine;
  tokenizer: HarmonyTokenizer;
  /** Frees the engine (and the device it created). */
  dispose: () => void;
}

/** The engine options the server loads with; planModel plans with the same ones. */
function engineOptions(opts: LoadModelOptions): EngineLoadOptions {
  return {
    context: opts.context,
    maxNumSeqs: opts.maxNumSeqs,
    maxBatchTokens: opts.maxBatchTokens,
    kvMemory: opts.kvMemory,
    speculative: opts.speculative,
    onDownloadProgress: opts.onDownloadProgress,
    quiet: !opts.onDownloadProgress,
  };
}

export async function loadModel(spec: string, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  const { engine, dir } = await loadEngine(spec, engineOptions(opts));
  // A synthetic model has no folder: it uses the generated o200k_harmony tokenizer.
  const tokenizer = await loadModelTokenizer(dir);
  if (engine.config.vocabSize < tokenizer.vocabSize) {
    engine.destroy();
    throw new Error(
      `${spec} has a ${engine.config.vocabSize}-token vocabulary; the server needs the full o200k_harmony vocabulary ` +
        `(${tokenizer.vocabSize}), e.g. synthetic:tiny`,
    );
  }
  return { engine, tokenizer, dispose: () => engine.destroy() };
}

/** Thrown from onPlan to stop a load once its plan is known. */
class PlanOnly {
  constructor(readonly plan: MemoryPlan) {}
}

/**
 * The memory plan of `spec` without loading it: the engine reports its plan (onPlan) before it
 * allocates anything, and the load stops there. It plans on a device of its own (the KV plan
 * reads the adapter's limits), freed after. A hub id is downloaded first (loading needs it anyway).
 */
export async function planModel(spec: string, opts: LoadModelOptions = {}): Promise<MemoryPlan> {
  const gpu = await acquireGpu();
  try {
    const { engine } = await loadEngine(spec, {
      ...engineOptions(opts),
      gpu,
      onPlan: (plan) => {
        throw new PlanOnly(plan);
      },
    });
    engine.destroy();
  } catch (e) {
    if (e instanceof PlanOnly) return e.plan;
    throw e;
  } finally {
    gpu.device.destroy();
  }
  throw new Error(`${spec}: the engine loaded without reporting its memory plan`);
}

/** One model of a server: a spec to load, or a loaded engine. */
export interface ModelOptions {
  /** The id clients use. Default: the spec (a folder's base name), else "gpt-oss". */
  name?: string;
  /** A folder, a hub id or synthetic:NAME, loaded in the background. */
  spec?: string;
  /** Or a loaded engine to serve (with `tokenizer`; the generated o200k_harmony one by default). */
  engine?: ServingEngine;
  tokenizer?: HarmonyTokenizer;
  /** Destroy `engine` when the server closes. Default false (the caller owns what it passes). */
  ownsEngine?: boolean;
  /** KV-cache positions when loading from spec (default: the server's context, else the model's maximum). */
  context?: number;
}

export interface HostOptions extends Omit<LoadModelOptions, 'log' | 'context'> {
  /** KV-cache positions of models loaded from a spec that set none. */
  context?: number;
  /** GPU memory in bytes that every model to load is planned against, before any loads. */
  gpuMemory?: number;
  /** Requests that may wait in each model's queue. */
  maxQueue: number;
  /** Sequences each loaded engine batches (an engine handed in brings its own). */
  maxNumSeqs: number;
  /** What a lost GPU device leads to: reload the model on a new device (default) or fail. */
  onDeviceLost?: DeviceLostPolicy;
}

/**
 * The served models of `entries`, each with its host and queue; loading runs in the background
 * (each host's `loaded` settles when it ends). `onReady` sees each engine once it is there.
 */
export function hostModels(entries: readonly ModelOptions[], opts: HostOptions, log: FastifyBaseLogger, onReady: (engine: ServingEngine) => void): ServedModel[] {
  for (const e of entries) if (!e.engine === !e.spec) throw new Error('each model needs either an engine or a spec');
  const names = entries.map((e) => e.name ?? defaultModelName(e.spec));
  const batching = { maxNumSeqs: opts.maxNumSeqs, maxBatchTokens: opts.maxBatchTokens, kvMemory: opts.kvMemory, speculative: opts.speculative };
  // The vocabulary index structured output needs (1-2 s) is built while loading, before /health
  // says ready, so the first constrained request does not pay for it.
  const warm = <M extends ReadyModel>(m: M): M => {
    const t0 = performance.now();
    try {
      warmConstraintIndex(m.tokenizer, maskVocabSize(m.engine, m.tokenizer));
      log.debug({ ms: Math.round(performance.now() - t0) }, 'constraint vocabulary index built');
    } catch (e) {
      log.warn({ err: e }, 'could not build the constraint vocabulary index; structured output will build it on first use');
    }
    return m;
  };
  // Models loaded from specs are planned first, all of them, when the GPU's size is known: what
  // does not fit is refused before anything loads. Then they load one at a time, in order.
  const toLoad = entries.flatMap((e, i) => (e.spec && !e.engine ? [{ name: names[i]!, spec: e.spec, context: e.context ?? opts.context }] : []));
  const budget = opts.gpuMemory;
  const planned: Promise<void> =
    budget === undefined || toLoad.length === 0
      ? Promise.resolve()
      : (async () => {
          const plans = [];
          for (const m of toLoad) plans.push({ ...m, plan: await planModel(m.spec, { context: m.context, ...batching, onDownloadProgress: opts.onDownloadProgress }) });
          checkPlansFit(plans, budget);
          const total = plans.reduce((n, p) => n + p.plan.total, 0);
          log.info({ models: plans.map((p) => ({ name: p.name, bytes: p.plan.total })) }, `memory plan: ${formatBytes(total)} of ${formatBytes(budget)}`);
        })();
  let previous: Promise<unknown> = Promise.resolve();
  const loadSpec = (spec: string, context: number | undefined) =>
    loadModel(spec, { context: context ?? opts.context, ...batching, onDownloadProgress: opts.onDownloadProgress, log: (m) => log.info(m) }).then(warm);
  return entries.map((e, i) => {
    let load: Promise<ReadyModel & { dispose?: () => void }>;
    if (e.engine) {
      const engine = e.engine;
      load = Promise.resolve(e.tokenizer ?? loadModelTokenizer()).then((tokenizer) =>
        warm({ engine, tokenizer, dispose: e.ownsEngine ? () => engine.destroy() : undefined }),
      );
    } else {
      const spec = e.spec!;
      load = Promise.all([planned, previous]).then(() => loadSpec(spec, e.context));
      previous = load.catch(() => {});
    }
    const host = new ModelHost(load, {
      onDeviceLost: opts.onDeviceLost ?? 'reload',
      // A model loaded from a spec comes back on a new device; an engine handed in cannot.
      ...(e.spec && !e.engine ? { reload: () => loadSpec(e.spec!, e.context) } : {}),
      log: (level, msg) => log[level]({ model: names[i] }, msg),
    });
    // the first load and every reload after a lost device
    host.onReady(onReady);
    host.loaded.then(() => {
      if (host.status === 'ready') {
        log.info({ model: names[i], context: host.engine?.contextLength }, 'model ready');
      } else {
        log.error({ model: names[i], err: host.error }, 'model failed to load');
      }
    }, () => {});
    // as many on the engine at once as it batches; an engine handed in brings its own number
    const queue = new AdmissionQueue(opts.maxQueue, e.engine ? (e.engine.maxNumSeqs ?? 1) : opts.maxNumSeqs);
    return { name: names[i]!, spec: e.spec ?? null, host, queue };
  });
}
