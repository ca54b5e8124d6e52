// The admission queue in front of an engine. The engine batches up to `concurrency` sequences
// (continuous batching: the engine's scheduler fits them into steps, KV pages and all); requests beyond
// that wait here in FIFO order, at most `maxQueue` of them (beyond that the caller answers 429). A
// waiting request whose client went away (its AbortSignal fired) leaves the queue at once and
// never reaches the engine.

export class QueueFullError extends Error {
  override name = 'QueueFullError';
}

export class QueueClosedError extends Error {
  override name = 'QueueClosedError';
}

interface Waiter {
  /** Takes the engine; false when the request was cancelled meanwhile (it is dropped). */
  start: () => boolean;
  fail: (err: unknown) => void;
}

export class AdmissionQueue {
  private readonly waiting: Waiter[] = [];
  private active = 0;
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  /** Smoothed duration of a turn, for Retry-After. */
  private meanTurnMs = 2000;

  constructor(
    /** Requests allowed to wait while the engine is full. */
    readonly maxQueue: number,
    /** Requests the engine runs at once (its sequences). */
    readonly concurrency = 1,
  ) {
    if (!(Number.isInteger(maxQueue) && maxQueue >= 0)) throw new Error(`maxQueue must be a non-negative integer, got ${maxQueue}`);
    if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new Error(`concurrency must be a positive integer, got ${concurrency}`);
  }

  /** Requests waiting for their turn (not counting the one running). */
  get queueDepth(): number {
    return this.waiting.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Whether any request is on the engine. */
  get busy(): boolean {
    return this.active > 0;
  }

  /** Requests on the engine. */
  get running(): number {
    return this.active;
  }

  private get full(): boolean {
    return this.active >= this.concurrency;
  }

  /** Whether run() would accept a request now (it is single-threaded JS: no race until run()). */
  hasRoom(): boolean {
    return !this.closed && (!this.full || this.waiting.length < this.maxQueue);
  }

  /** Seconds a client turned away should wait: the queue ahead of it at the recent pace. */
  retryAfterSeconds(): number {
    return Math.min(60, Math.max(1, Math.ceil(((this.waiting.length + 1) * this.meanTurnMs) / this.concurrency / 1000)));
  }

  /**
   * Runs `task` when the engine is free. Throws QueueFullError right away when the queue is full
   * (unless the request was `admitted` already);
   * rejects with the signal's reason when the signal fires before the turn comes.
   */
  run<T>(signal: AbortSignal, task: () => Promise<T>, o: { admitted?: boolean } = {}): Promise<T> {
    if (this.closed) return Promise.reject(new QueueClosedError('the server is shutting down'));
    if (signal.aborted) return Promise.reject(abortReason(signal));
    // `admitted`: a further choice (n > 1) of a request that already got in waits past the limit
    if (this.full && this.waiting.length >= this.maxQueue && !o.admitted) throw new QueueFullError(`${this.waiting.length} requests are already waiting`);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) {
          this.waiting.splice(i, 1);
          reject(abortReason(signal));
        }
      };
      const waiter: Waiter = {
        start: () => {
          signal.removeEventListener('abort', onAbort);
          if (signal.aborted) {
            reject(abortReason(signal));
            return false;
          }
          this.active++;
          const t0 = performance.now();
          let p: Promise<T>;
          try {
            p = task();
          } catch (e) {
            p = Promise.reject(e);
          }
          // The slot is free again before the caller hears back, so the next turn starts at once.
          const done = () => {
            this.meanTurnMs = 0.8 * this.meanTurnMs + 0.2 * (performance.now() - t0);
            this.active--;
            this.next();
          };
          p.then(
            (v) => {
              done();
              resolve(v);
            },
            (e: unknown) => {
              done();
              reject(e);
            },
          );
          return true;
        },
        fail: (err) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      if (!this.full) {
        if (!waiter.start()) this.next();
      } else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(waiter);
      }
    });
  }

  private next(): void {
    while (!this.full) {
      const w = this.waiting.shift();
      if (!w) break;
      w.start();
    }
    if (!this.active && !this.waiting.length) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Resolves once no request holds the engine and none waits. */
  whenIdle(): Promise<void> {
    if (!this.active && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Refuses new work and fails every waiting request; the running ones finish on their own. */
  close(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.fail(new QueueClosedError('the server is shutting down'));
  }
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted.', 'AbortError');
}
