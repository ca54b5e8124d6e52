// What one dependent dispatch costs on the device (gpu-review.md 6: it decides how much fusing
// kernels is worth): passes of 1 and of N tiny dispatches that each read the previous one's
// write, timed by timestamps at the pass's ends; (t_N - t_1) / (N - 1) per dispatch, best of runs.
import type { Gpu } from '../gpu/device.js';
import { bindGroup, readBuffer, storageBuffer } from '../gpu/buffers.js';
import { KERNEL_PARAMS } from '../gpu/kernel-params.js';
import { paramsBuffer } from '../gpu/params.js';
import { ShaderCache } from '../gpu/shaders.js';

export interface DispatchGap {
  usPerDispatch: number;
  dispatches: number;
  /** The word's final value matched the dispatches run (every one executed). */
  counted: boolean;
}

/** null when the adapter has no timestamp-query (host timing would measure the submit instead). */
export async function measureDispatchGap(gpu: Gpu, n = 1000, runs = 3): Promise<DispatchGap | null> {
  if (!gpu.features.timestampQuery) return null;
  const device = gpu.device;
  const cache = new ShaderCache(gpu, false);
  const pipeline = cache.pipeline({ shader: 'dispatch_gap' });
  await cache.validate();
  const word = storageBuffer(gpu, 16, 'dispatch_gap.word');
  const params = paramsBuffer(gpu, KERNEL_PARAMS.dispatch_gap, { add: 1 }, 'dispatch_gap.params');
  const bg = bindGroup(gpu, pipeline, [params, word]);
  const qs = device.createQuerySet({ type: 'timestamp', count: 2 });
  const resolve = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const time = async (count: number): Promise<number> => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bg);
    for (let i = 0; i < count; i++) pass.dispatchWorkgroups(1);
    pass.end();
    enc.resolveQuerySet(qs, 0, 2, resolve, 0);
    device.queue.submit([enc.finish()]);
    const t = new BigInt64Array(await readBuffer(gpu, resolve));
    return Number(t[1]! - t[0]!) / 1e3;
  };
  let best = Infinity;
  let total = 0;
  try {
    await time(n); // warm-up
    total += n;
    for (let r = 0; r < runs; r++) {
      const one = await time(1);
      const many = await time(n);
      total += 1 + n;
      best = Math.min(best, (many - one) / (n - 1));
    }
    const final = new Uint32Array(await readBuffer(gpu, word, 0, 4))[0];
    return { usPerDispatch: best, dispatches: n, counted: final === total };
  } finally {
    word.destroy();
    params.destroy();
    qs.destroy();
    resolve.destroy();
  }
}
