// Polling for a condition in tests, bounded in time: the one helper for "wait until".

export interface UntilOptions {
  /** Give up after this long (default 60 s). */
  timeoutMs?: number;
  /** Checked on each poll: a reason to fail at once (e.g. the process under test exited). */
  failIf?: () => string | null;
  /** Poll interval (default 10 ms). */
  everyMs?: number;
}

/** Polls `probe` until it returns something other than undefined, null or false, and returns that. */
export async function until<T>(what: string, probe: () => T | undefined | null | false, o: UntilOptions = {}): Promise<T> {
  const t0 = Date.now();
  const timeoutMs = o.timeoutMs ?? 60_000;
  for (;;) {
    const found = probe();
    if (found !== undefined && found !== null && found !== false) return found;
    const failure = o.failIf?.();
    if (failure) throw new Error(`${failure} (while waiting until ${what})`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, o.everyMs ?? 10));
  }
}
