// The model the server serves, which may still be loading: routes ask `ready()` for the engine and
// tokenizer and get a 503 while the load runs (or after it failed).
import type { BatchingState, GenerateOptions, GenerateResult, StepSize } from '../engine/engine.js';
import type { HarmonyTokenizer } from '../tokenizer/index.js';
import { modelFailed, modelLoading } from './errors.js';

/** What the server needs of an engine (the real Engine has all of it). */
export interface ServingEngine {
  generate(prompt: readonly number[], options: GenerateOptions): Promise<GenerateResult>;
  readonly contextLength: number;
  readonly isBusy: boolean;
  /** vocabSize: the logits' length, which a constraint's mask covers (default: the tokenizer's). */
  readonly config: { readonly eosTokenIds: readonly number[]; readonly vocabSize?: number };
  /** Sequences it runs at once (continuous batching); 1 when absent. */
  readonly maxNumSeqs?: number;
  /** The batching engine's live state, for /metrics. */
  batching?(): BatchingState;
  /** Set by the server: called with each step's size (batching engines only). */
  onStep?: ((s: StepSize) => void) | null;
  destroy(): void;
}

export interface ReadyModel {
  engine: ServingEngine;
  tokenizer: HarmonyTokenizer;
}

export type ModelStatus = 'loading' | 'ready' | 'failed';

export class ModelHost {
  private model: ReadyModel | null = null;
  private dispose: (() => void) | null = null;
  private failure: Error | null = null;
  private closed = false;
  /** Settles when loading ends either way. */
  readonly loaded: Promise<void>;

  constructor(load: Promise<ReadyModel & { dispose?: () => void }>) {
    this.loaded = load.then(
      (m) => {
        if (this.closed) {
          m.dispose?.();
          return;
        }
        this.model = { engine: m.engine, tokenizer: m.tokenizer };
        this.dispose = m.dispose ?? null;
      },
      (e: unknown) => {
        this.failure = e instanceof Error ? e : new Error(String(e));
      },
    );
  }

  get status(): ModelStatus {
    return this.model ? 'ready' : this.failure ? 'failed' : 'loading';
  }

  get error(): Error | null {
    return this.failure;
  }

  /** The engine, or undefined while loading. */
  get engine(): ServingEngine | undefined {
    return this.model?.engine;
  }

  /** The loaded model; throws the 503 to answer while it is not. */
  ready(): ReadyModel {
    if (this.model) return this.model;
    if (this.failure) throw modelFailed(this.failure.message);
    throw modelLoading();
  }

  /** Frees the model (if this host owns it) once it is no longer generating. */
  close(): void {
    this.closed = true;
    const dispose = this.dispose;
    this.dispose = null;
    this.model = null;
    dispose?.();
  }
}
