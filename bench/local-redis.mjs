// A throwaway redis-server for tests and the soak: loopback only, a free port, its files in a
// temporary folder, no persistence; stop() ends it (by its pid) and removes the folder.
// redis-server comes from Debian's package (scripts/setup-test-tools.mjs installs it).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A TCP port free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts redis-server on `port` (default: a free one) and resolves once it accepts connections.
 * `restart()` starts it again on the same port (after stop()), to test a store coming back.
 */
export async function startRedis(opts = {}) {
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(path.join(tmpdir(), 'gpt-oss-redis-'));
  let child = null;
  const launch = () =>
    new Promise((resolve, reject) => {
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'yes', '--maxmemory', opts.maxmemory ?? '256mb', '--maxmemory-policy', 'allkeys-lru'];
      const p = spawn(opts.bin ?? 'redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = p;
      let out = '';
      const timer = setTimeout(() => {
        p.kill('SIGKILL');
        reject(new Error(`redis-server did not start within 20 s: ${out}`));
      }, 20_000);
      p.stdout.on('data', (d) => {
        out += d;
        if (/Ready to accept connections/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      p.stderr.on('data', (d) => (out += d));
      p.once('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`cannot start redis-server (${e.message}); install it (node scripts/setup-test-tools.mjs)`));
      });
      p.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}: ${out}`));
      });
    });
  const stopChild = () =>
    new Promise((resolve) => {
      const p = child;
      child = null;
      if (!p || p.exitCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
      setTimeout(() => p.kill('SIGKILL'), 5000).unref();
    });
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    get pid() {
      return child?.pid ?? null;
    },
    /** Stops the server, keeping the folder (restart() may follow). */
    pause: stopChild,
    restart: launch,
    async stop() {
      await stopChild();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
