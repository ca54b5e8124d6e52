// Faults inside a step (injected through EngineOptions.faultHook at each phase: schedule, inputs,
// submit, readback) fail the sequences of that step, whose generate() rejects with the error;
// their pages return to the pool, no rejection goes unhandled, the waiting request the fault did
// not touch still completes, and the next request produces the same tokens as a clean run.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Engine, type StepPhase } from '../../src/engine/engine.js';
import { PagePool } from '../../src/engine/kv-pages.js';
import { testGpu } from '../helpers/gpu.js';
import { manifest, ORACLE } from '../helpers/oracle.js';
import { rng } from '../helpers/random.js';

const gpu = await testGpu();
const man = manifest('tiny-e32k4');
let armed: { phase: StepPhase; after: number } | null = null;
const injected: StepPhase[] = [];
const engine = await Engine.load(join(ORACLE, 'tiny-e32k4', 'hf'), {
  gpu,
  context: 128,
  maxBatchTokens: 24,
  maxNumSeqs: 2,
  kvDtype: 'f32',
  faultHook: (phase) => {
    if (!armed || armed.phase !== phase || armed.after-- > 0) return;
    armed = null;
    injected.push(phase);
    throw new Error(`injected ${phase} fault`);
  },
});
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);
beforeAll(() => void process.on('unhandledRejection', onUnhandled));
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
  engine.destroy();
});

describe('a fault in any phase of a step', () => {
  it('fails that step\'s requests, frees their pages, and the engine serves on with the same tokens', async () => {
    const r = rng(4);
    const prompts = [0, 1, 2].map((i) => Array.from({ length: 20 + 7 * i }, () => Math.floor(r() * 500)));
    // clean runs, one at a time: the reference tokens (and their blocks in the prefix cache)
    const clean = [];
    for (const p of prompts) clean.push((await engine.generate(p, { maxTokens: 16 })).tokens);
    const baseline = engine.batching();
    expect(baseline.kvPagesUsed).toBe(0);
    const log = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      for (const phase of ['schedule', 'inputs', 'submit', 'readback'] as const) {
        // two run (the batch holds two), the third waits for a slot; the fault hits a later step
        armed = { phase, after: 4 };
        const runs = prompts.map((p) => engine.generate(p, { maxTokens: 16 }));
        const settled = await Promise.allSettled(runs);
        expect(injected.at(-1), phase).toBe(phase);
        // the step's two sequences failed with the error (a failed schedule fails all it had)
        for (const s of settled.slice(0, 2)) {
          expect(s.status, phase).toBe('rejected');
          expect(String((s as PromiseRejectedResult).reason), phase).toContain(`injected ${phase} fault`);
        }
        const third = settled[2]!;
        if (phase === 'schedule') expect(third.status).toBe('rejected');
        else expect(third.status === 'fulfilled' && third.value.tokens, `${phase}: the waiting request`).toEqual(clean[2]);
        // the fault was logged with the phase that failed
        expect(log.mock.calls.some((c) => String(c[0]).includes('failed') && String(c[1]).includes(phase)), phase).toBe(true);
        const b = engine.batching();
        expect([b.running, b.waiting, b.kvPagesUsed], `${phase}: pages back in the pool`).toEqual([0, 0, baseline.kvPagesUsed]);
        expect(engine.isBusy).toBe(false);
        // the next requests succeed with the clean tokens
        const again = await Promise.all(prompts.slice(0, 2).map((p) => engine.generate(p, { maxTokens: 16 })));
        expect(again.map((a) => a.tokens), phase).toEqual(clean.slice(0, 2));
      }
    } finally {
      log.mockRestore();
    }
    // the oracle's own greedy run still matches after all of it
    expect((await engine.generate(man.prompt_ids, { maxTokens: 24 })).tokens).toEqual(man.generated_ids);
    await new Promise((res) => setTimeout(res, 50));
    expect(unhandled).toEqual([]);
  });

  it('a page-pool invariant violation says which pool and its numbers', () => {
    const pool = new PagePool('full', 4);
    const p = pool.alloc();
    pool.release(p);
    expect(() => pool.release(p)).toThrow(/KV pool full: page \d+ released more often than held \(refs 0, 4 pages, 4 free, 0 evictable\)/);
    for (let i = 0; i < 4; i++) pool.alloc();
    expect(() => pool.alloc()).toThrow(/KV pool full: no page left \(4 pages, 0 free, 0 evictable\)/);
  });
});
