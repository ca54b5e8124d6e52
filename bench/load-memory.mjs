// Peak host memory while loading a checkpoint: writes a ~0.5 GB synthetic checkpoint (Hugging Face
// layout) and loads it, sampling RSS every 5 ms. Loading streams tensor by tensor in 64 MiB pieces,
// so the peak should be a constant (runtime + Dawn) plus at most the largest tensor, never the file.
// Usage: npm run build && node bench/load-memory.mjs [dir]
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromPreset } from '../dist/model/config.js';
import { writeSyntheticCheckpoint } from '../dist/model/synthetic.js';
import { Engine } from '../dist/engine/engine.js';
import { acquireGpu } from '../dist/gpu/device.js';
import { expectedTensors } from '../dist/model/checkpoint.js';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const dir = process.argv[2] ?? (await mkdtemp(join(tmpdir(), 'gpt-oss-loadmem-')));
const cfg = configFromPreset({
  numLayers: 6, numExperts: 32, expertsPerToken: 4, vocabSize: 32000, hiddenSize: 1024,
  intermediateSize: 1024, numHeads: 16, numKvHeads: 4, headDim: 64, slidingWindow: 128,
});
await writeSyntheticCheckpoint(dir, cfg, 1);
const fileBytes = (await stat(join(dir, 'model.safetensors'))).size;
const largest = Math.max(...expectedTensors(cfg).map((t) => t.shape.reduce((a, b) => a * b, 1) * (t.dtypes[0] === 'U8' ? 1 : 2)));
const gpu = await acquireGpu();
globalThis.gc?.();
const before = process.memoryUsage().rss;
let peak = before;
const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
const t0 = performance.now();
const engine = await Engine.load(dir, { gpu, context: 256 });
clearInterval(timer);
peak = Math.max(peak, process.memoryUsage().rss);
const mb = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`;
console.log(JSON.stringify({
  checkpoint_bytes: fileBytes, largest_tensor_bytes: largest, rss_before: before, rss_peak: peak,
  load_s: Math.round(performance.now() - t0) / 1000,
}));
console.log(`checkpoint ${mb(fileBytes)}, largest tensor ${mb(largest)}: RSS ${mb(before)} before load, peak ${mb(peak)} (+${mb(peak - before)})`);
engine.destroy();
if (!process.argv[2]) await rm(dir, { recursive: true, force: true });
process.exit(0);
