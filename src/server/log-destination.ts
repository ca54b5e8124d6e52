// Where `serve` writes its JSON log: stdout, through a pino destination that can never block the
// process. pino's default destination is asynchronous and registers an exit handler that flushes
// it with sonic-boom's flushSync, which retries a failed write every 100 ms for as long as it
// fails: EAGAIN (a pipe that is full because nobody reads it) and EPIPE (a pipe whose reader is
// gone) alike, so `process.exit` never returned. This destination writes synchronously (pino
// registers no exit flush for it), gives up on EAGAIN instead of sleeping (the line stays
// buffered and goes out with the next one), bounds that buffer (lines past it are dropped and
// counted), and drops everything once the reader is gone.
import pino from 'pino';

/** Log bytes kept while the pipe is full; later lines are dropped until it drains. */
export const MAX_BUFFERED_LOG_BYTES = 1 << 20;

export interface LogDestination {
  stream: pino.DestinationStream;
  /** Lines dropped so far (pipe full past the buffer, or its reader gone). */
  readonly dropped: number;
}

export function exitSafeDestination(fd = 1): LogDestination {
  // On a pipe, creating process.stdout makes libuv put the fd in non-blocking mode: a write to
  // a full pipe then fails with EAGAIN instead of blocking the thread.
  if (fd === 1) void process.stdout.fd;
  else if (fd === 2) void process.stderr.fd;
  const sonic = pino.destination({ dest: fd, sync: true, maxLength: MAX_BUFFERED_LOG_BYTES, retryEAGAIN: () => false });
  const out = { stream: sonic as pino.DestinationStream, dropped: 0 };
  sonic.on('drop', () => out.dropped++);
  sonic.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EAGAIN' || err.code === 'EBUSY') return;
    // The reader is gone (EPIPE) or the fd broke: nothing can be written any more.
    out.dropped++;
    const s = sonic as unknown as Record<string, unknown>;
    const noop = () => true;
    s['write'] = noop;
    s['flushSync'] = noop;
    s['end'] = noop;
  });
  return out;
}
