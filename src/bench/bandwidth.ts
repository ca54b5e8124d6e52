// Device memory bandwidth measured the way performance.md asks: a large buffer-to-buffer copy
// timed with timestamp queries (bytes read + written), best of several runs.
import type { Gpu } from '../gpu/device.js';
import { readBuffer } from '../gpu/buffers.js';

export interface Bandwidth {
  gbPerS: number;
  bytes: number;
  /** 'timestamp' when timed on the GPU, 'host' when the adapter lacks timestamp-query. */
  timer: 'timestamp' | 'host';
}

export async function measureBandwidth(gpu: Gpu, bytes: number, runs = 5): Promise<Bandwidth> {
  const device = gpu.device;
  const size = Math.floor(Math.min(bytes, device.limits.maxBufferSize) / 256) * 256;
  const src = device.createBuffer({ size, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.STORAGE });
  const dst = device.createBuffer({ size, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.STORAGE });
  const ts = gpu.features.timestampQuery;
  const qs = ts ? device.createQuerySet({ type: 'timestamp', count: 2 }) : null;
  const resolve = ts ? device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }) : null;
  let best = Infinity;
  try {
    for (let r = 0; r <= runs; r++) {
      const enc = device.createCommandEncoder();
      // empty passes around the copy carry the timestamps (copies cannot write them)
      if (qs) enc.beginComputePass({ timestampWrites: { querySet: qs, endOfPassWriteIndex: 0 } }).end();
      enc.copyBufferToBuffer(src, 0, dst, 0, size);
      if (qs) enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 1 } }).end();
      if (qs && resolve) enc.resolveQuerySet(qs, 0, 2, resolve, 0);
      const t0 = performance.now();
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
      let ms = performance.now() - t0;
      if (resolve) {
        const t = new BigInt64Array(await readBuffer(gpu, resolve));
        ms = Number(t[1]! - t[0]!) / 1e6;
      }
      if (r > 0 && ms > 0) best = Math.min(best, ms); // run 0 warms up
    }
  } finally {
    src.destroy();
    dst.destroy();
    qs?.destroy();
    resolve?.destroy();
  }
  return { gbPerS: (2 * size) / (best / 1e3) / 1e9, bytes: size, timer: ts ? 'timestamp' : 'host' };
}
