// Turns `--model` into a loaded engine and its tokenizer: a local folder, a Hugging Face hub id
// (downloaded into the HF cache with a progress bar), or `synthetic:NAME` (random weights, for
// smoke runs and tests).
import type { MemoryPlan } from '../engine/engine.js';
import { loadEngine, type LoadEngineOptions as EngineLoadOptions } from '../engine/load-model.js';
import { acquireGpu } from '../gpu/device.js';
import type { DownloadProgress } from '../model/hub.js';
import { loadModelTokenizer, type HarmonyTokenizer } from '../tokenizer/index.js';
import type { ServingEngine } from './model-host.js';

export interface LoadModelOptions {
  /** KV-cache positions; default the model's maximum. */
  context?: number;
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
  return { context: opts.context, onDownloadProgress: opts.onDownloadProgress, quiet: !opts.onDownloadProgress };
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
