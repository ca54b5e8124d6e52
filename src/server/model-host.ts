// The model the server serves, which may still be loading: routes ask `ready()` for the engine and
// tokenizer and get a 503 while the load runs (or after it failed).
//
// Device loss: when Dawn reports the engine's device lost (a driver reset, a kernel that timed
// out, device.destroy()) or a generation fails with a device error, every request on the engine
// ends with a 503 `device_lost`, the host answers 503 (`recovering`) and, with the `reload`
// policy, loads the model again on a fresh device; with `exit` it fails for good and the server
// exits non-zero so the orchestrator restarts it.
import type { BatchingState, GenerateOptions, GenerateResult, StepSize } from '../engine/engine.js';
import type { HarmonyTokenizer } from '../tokenizer/index.js';
import { ApiError, modelFailed, modelLoading } from './errors.js';

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

export type LoadedReady = ReadyModel & { dispose?: () => void };

export type ModelStatus = 'loading' | 'ready' | 'failed' | 'recovering';

export type DeviceLostPolicy = 'reload' | 'exit';

export interface HostOptions {
  /** What a lost device leads to (default reload; without `reload` below, the host fails). */
  onDeviceLost?: DeviceLostPolicy;
  /** Loads the model again on a fresh device. */
  reload?: () => Promise<LoadedReady>;
  log?: (level: 'error' | 'warn' | 'info', msg: string) => void;
}

export const deviceLost = (why: string): ApiError =>
  new ApiError(503, `The GPU device was lost (${why}); the request was stopped. Retry shortly.`, 'server_error', null, 'device_lost', { 'retry-after': '10' });

/** The GPU device of a real Engine (`engine.gpu.device`); none for scripted engines. */
function deviceOf(engine: ServingEngine): GPUDevice | undefined {
  return (engine as { gpu?: { device?: GPUDevice } }).gpu?.device;
}

/**
 * An error a lost or broken device produces: Dawn rejects mapAsync and friends with DOMExceptions
 * (AbortError, OperationError) once the device is gone. The engine's own errors (bad prompts,
 * constraint failures) are plain Errors, and a cancelled generation resolves instead.
 */
export function isDeviceError(e: unknown): boolean {
  if (typeof DOMException !== 'undefined' && e instanceof DOMException) return true;
  const name = (e as { name?: unknown } | null)?.name;
  const message = String((e as { message?: unknown } | null)?.message ?? '');
  return name === 'GPUDeviceLostError' || name === 'GPUInternalError' || /device (was |is )?(lost|destroyed)|lost device/i.test(message);
}

export class ModelHost {
  private model: ReadyModel | null = null;
  /** The routes' view of the engine: generate() turns device errors into device_lost. */
  private guarded: ServingEngine | null = null;
  private dispose: (() => void) | null = null;
  private failure: Error | null = null;
  private recovering: string | null = null;
  private closed = false;
  /** Engines whose device is gone: generate() on them answers device_lost at once. */
  private readonly lost = new WeakSet<ServingEngine>();
  private readonly failureListeners: Array<(e: Error) => void> = [];
  private readonly readyListeners: Array<(engine: ServingEngine) => void> = [];
  /** Device losses seen (metrics, tests). */
  losses = 0;
  /** Reloads that brought the model back. */
  reloads = 0;
  /** Settles when loading ends either way. */
  readonly loaded: Promise<void>;

  constructor(
    load: Promise<LoadedReady>,
    private readonly opts: HostOptions = {},
  ) {
    this.loaded = load.then(
      (m) => this.install(m),
      (e: unknown) => this.fail(e instanceof Error ? e : new Error(String(e))),
    );
  }

  get status(): ModelStatus {
    return this.model ? 'ready' : this.failure ? 'failed' : this.recovering !== null ? 'recovering' : 'loading';
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
    if (this.model) return { engine: this.guarded!, tokenizer: this.model.tokenizer };
    throw this.unavailable();
  }

  /** The 503 a request gets while the model is not ready. */
  unavailable(): ApiError {
    if (this.failure) return modelFailed(this.failure.message);
    if (this.recovering !== null) return deviceLost(`${this.recovering}; the model is being reloaded`);
    return modelLoading();
  }

  /** Called when the host fails for good (load failed, device lost under the exit policy). */
  onFailure(listener: (e: Error) => void): void {
    this.failureListeners.push(listener);
    if (this.failure) listener(this.failure);
  }

  /** Called with each engine that becomes ready (the first load and every reload). */
  onReady(listener: (engine: ServingEngine) => void): void {
    this.readyListeners.push(listener);
    if (this.model) listener(this.model.engine);
  }

  /**
   * The engine's device is gone: fail what runs on it with device_lost, free it, then reload or
   * fail. `engine` is the one that was lost (a late report about an earlier engine is ignored).
   */
  deviceLost(engine: ServingEngine, why: string): void {
    if (this.closed || this.lost.has(engine) || this.model?.engine !== engine) return;
    this.lost.add(engine);
    this.losses++;
    this.opts.log?.('error', `the GPU device was lost (${why}); every request in flight ends with device_lost`);
    const dispose = this.dispose;
    this.model = null;
    this.guarded = null;
    this.dispose = null;
    // Frees the engine and its device; every sequence on it is rejected (and mapped to device_lost).
    try {
      dispose?.();
    } catch (e) {
      this.opts.log?.('warn', `freeing the lost engine failed: ${(e as Error).message}`);
    }
    const reload = this.opts.reload;
    if ((this.opts.onDeviceLost ?? 'reload') === 'exit' || !reload) {
      this.fail(new Error(`the GPU device was lost (${why})${reload ? '' : ' and this model cannot be reloaded'}`));
      return;
    }
    this.recovering = why;
    this.opts.log?.('info', 'reloading the model on a new device');
    void reload().then(
      (m) => {
        this.recovering = null;
        this.reloads++;
        this.install(m);
        if (!this.closed) this.opts.log?.('info', 'the model is back after the device loss');
      },
      (e: unknown) => {
        this.recovering = null;
        this.fail(new Error(`the GPU device was lost (${why}) and reloading failed: ${(e as Error).message}`));
      },
    );
  }

  private install(m: LoadedReady): void {
    if (this.closed) {
      m.dispose?.();
      return;
    }
    const engine = m.engine;
    this.model = { engine, tokenizer: m.tokenizer };
    this.guarded = this.guard(engine);
    this.dispose = m.dispose ?? null;
    // Dawn resolves `lost` when the device goes, whatever the cause; a device freed by close()
    // or by the loss handling itself is no longer this host's model by then.
    void deviceOf(engine)?.lost.then((info) => this.deviceLost(engine, info.message || `reason: ${info.reason}`));
    for (const l of this.readyListeners) l(engine);
  }

  /** The engine as the routes use it: generate() answers device_lost once its device is gone. */
  private guard(engine: ServingEngine): ServingEngine {
    const host = this;
    const generate = (prompt: readonly number[], o: GenerateOptions): Promise<GenerateResult> => {
      if (host.lost.has(engine)) return Promise.reject(deviceLost('the model is being reloaded'));
      return engine.generate(prompt, o).catch((e: unknown) => {
        if (host.lost.has(engine)) throw deviceLost(String((e as Error)?.message || 'the device is gone'));
        if (isDeviceError(e)) {
          const why = `a step failed: ${(e as Error)?.name ?? 'error'} ${(e as Error)?.message ?? ''}`.trim();
          host.deviceLost(engine, why);
          throw deviceLost(why);
        }
        throw e;
      });
    };
    return new Proxy(engine, {
      get(target, key) {
        if (key === 'generate') return generate;
        const v = Reflect.get(target, key, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
      set(target, key, value) {
        return Reflect.set(target, key, value, target);
      },
    });
  }

  /**
   * Test hook (tests, `--test-hooks`): destroys the engine's device the way a driver reset would
   * lose it; Dawn then reports it lost and the host handles it as above. False when nothing is loaded.
   */
  destroyDevice(): boolean {
    const engine = this.model?.engine;
    if (!engine) return false;
    const device = deviceOf(engine);
    if (device) device.destroy();
    else this.deviceLost(engine, 'destroyed by the test hook');
    return true;
  }

  private fail(e: Error): void {
    this.failure = e;
    for (const l of this.failureListeners) l(e);
  }

  /** Frees the model (if this host owns it) once it is no longer generating. */
  close(): void {
    this.closed = true;
    const dispose = this.dispose;
    this.dispose = null;
    this.model = null;
    this.guarded = null;
    dispose?.();
  }
}
