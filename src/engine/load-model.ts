// One way to turn a --model argument into an Engine: `synthetic:NAME` (random weights made on
// the GPU), a checkpoint folder, or a Hugging Face hub id (downloaded into the HF cache first).
import { resolveModel, stderrProgressBar, type DownloadProgress } from '../model/hub.js';
import { syntheticConfig, syntheticGpuSource } from '../model/synthetic.js';
import { Engine, type EngineOptions } from './engine.js';

export interface LoadedEngine {
  engine: Engine;
  /** The checkpoint folder, or undefined for synthetic models (they use the generated tokenizer). */
  dir?: string;
}

export interface LoadEngineOptions extends EngineOptions {
  /** Download progress for hub ids; default a progress bar on stderr. */
  onDownloadProgress?: (p: DownloadProgress) => void;
  /** No progress output. */
  quiet?: boolean;
  /** Seed of synthetic weights. */
  seed?: number;
  /** Synthetic models only: the real dimensions with this many layers. */
  layers?: number;
}

export async function loadEngine(spec: string, opts: LoadEngineOptions = {}): Promise<LoadedEngine> {
  if (spec.startsWith('synthetic:')) {
    const config = syntheticConfig(spec.slice('synthetic:'.length), { layers: opts.layers });
    return { engine: await Engine.load(syntheticGpuSource(config, opts.seed ?? 1), opts) };
  }
  if (opts.layers !== undefined) throw new Error(`--layers applies to synthetic models, not ${spec}`);
  const onProgress = opts.onDownloadProgress ?? (opts.quiet ? undefined : stderrProgressBar());
  const dir = await resolveModel(spec, onProgress ? { onProgress } : {});
  return { engine: await Engine.load(dir, opts), dir };
}
