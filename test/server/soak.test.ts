// The 3-minute soak: bench/soak.mjs against two real `serve` processes (synthetic:tiny, the built
// CLI in dist/) sharing a redis-server of its own, with aborts, malformed and oversized requests,
// chains across the replicas, a SIGTERM-and-restart and a lost GPU device on each replica. Nothing
// may be lost: no 5xx but the injected ones, every stream ends properly, every stored response is
// found on the other replica, KV pages back to zero after each wave. (The 60-minute figures are in
// bench/RESULTS.md.)
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers.js';

describe('soak', () => {
  it('3 minutes of mixed traffic and chaos on two replicas sharing Redis lose nothing', async () => {
    expect(existsSync(path.join(REPO_ROOT, 'dist', 'cli.js')), 'the CLI is built (npx tsc -p tsconfig.json)').toBe(true);
    const dir = mkdtempSync(path.join(tmpdir(), 'gpt-oss-soak-'));
    const out = path.join(dir, 'soak.json');
    try {
      const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = execFile(
          process.execPath,
          [path.join(REPO_ROOT, 'bench', 'soak.mjs'), '--duration', '180', '--wave-seconds', '45', '--max-num-seqs', '2', '--seed', '21', '--out', out],
          { cwd: REPO_ROOT, timeout: 25 * 60_000, maxBuffer: 64 * 1024 * 1024 },
          (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
        );
        child.stdin?.end();
      });
      expect(existsSync(out), stderr).toBe(true);
      const r = JSON.parse(readFileSync(out, 'utf8'));
      const why = JSON.stringify({ outcomes: r.outcomes, unexpected: r.unexpected, storedMissing: r.storedMissing, injected: r.injected, waves: r.waves, stderr: stderr.slice(-3000) }, null, 1);
      expect(r.failed, why).toBe(false);
      expect(r.unexpectedCount, why).toBe(0);
      expect(r.streamsUnterminated, why).toBe(0);
      expect(r.storedMissingCount, why).toBe(0);
      expect(r.kvBackToBaseline, why).toBe(true);
      expect(r.ok, why).toBe(true);
      expect(code, why).toBe(0);
      // It did what it says: traffic of each family, stored responses checked across replicas,
      // both kinds of chaos, and the device-loss replicas came back healthy.
      const kinds = new Set(Object.keys(r.outcomes).map((k: string) => k.split(':')[0]));
      for (const k of ['chat', 'chat_stream', 'completions', 'responses', 'malformed']) expect(kinds, why).toContain(k);
      expect(Object.keys(r.outcomes).some((k) => k.endsWith(':aborted')), why).toBe(true);
      expect(r.storedChecked, why).toBeGreaterThan(0);
      expect(r.streamsChecked, why).toBeGreaterThan(0);
      const sigterm = r.injected.find((e: { what: string }) => e.what === 'sigterm');
      expect(sigterm?.exit, why).toEqual({ code: 0, signal: null });
      const losses = r.injected.filter((e: { what: string }) => e.what === 'device_lost');
      expect(losses.length, why).toBe(2);
      for (const l of losses) expect(l, why).toMatchObject({ hook: 200, healthDropped: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
