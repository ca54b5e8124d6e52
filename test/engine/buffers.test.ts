// destroy() frees every buffer the engine made, with a caller-owned device (which the engine must
// not destroy): the device's createBuffer is wrapped to see each buffer made and destroyed,
// uniforms of the kernel factories, the sampler's scratch, the Step uniform and captureForward's
// program included; captureForward frees what it builds before it returns.
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/device.js';
import { Engine } from '../../src/engine/engine.js';
import { syntheticConfig, syntheticGpuSource } from '../../src/model/synthetic.js';
import { testGpu } from '../helpers/gpu.js';

function countingGpu(base: Gpu) {
  const live = new Map<GPUBuffer, string>();
  let created = 0;
  const device = new Proxy(base.device, {
    get(target, key) {
      if (key === 'createBuffer') {
        return (d: GPUBufferDescriptor) => {
          const b = target.createBuffer(d);
          created++;
          live.set(b, d.label ?? '(unlabeled)');
          const destroy = b.destroy.bind(b);
          Object.defineProperty(b, 'destroy', { value: () => (live.delete(b), destroy()) });
          return b;
        };
      }
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { gpu: { ...base, device } as Gpu, live, created: () => created };
}

describe('buffer ownership', () => {
  it('destroy() frees every buffer made for the engine; captureForward frees its own', async () => {
    const { gpu, live, created } = countingGpu(await testGpu());
    const engine = await Engine.load(syntheticGpuSource(syntheticConfig('tiny'), 2), { gpu, context: 128, maxNumSeqs: 2, maxBatchTokens: 32, allLogits: true });
    const atLoad = live.size;
    expect(atLoad).toBeGreaterThan(50);
    await Promise.all([
      engine.generate([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], { maxTokens: 4 }),
      engine.generate([11, 12, 13], { maxTokens: 4, temperature: 1, seed: 3 }),
      engine.generate([5, 4, 3], { maxTokens: 2, onPrefillLogits: () => {} }),
    ]);
    const afterRun = live.size;
    for (const T of [3, 12]) {
      const before = created();
      await engine.captureForward([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].slice(0, T));
      expect(created() - before, 'captureForward builds a program').toBeGreaterThan(10);
      expect(live.size, `captureForward of ${T} tokens leaves nothing behind`).toBe(afterRun);
    }
    engine.destroy();
    expect([...live.values()], 'buffers left after destroy()').toEqual([]);
    // the device is the caller's: still usable
    gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE }).destroy();
  });
});
