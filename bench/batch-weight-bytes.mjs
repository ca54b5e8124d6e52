// Weight bytes the kernels fetch in one decode step of N sequences at once (counted from the
// buffer ranges the step's dispatches bind, experts from the step's routing), for N = 1, 4, 16:
// continuous batching reads each matrix once per step, not once per sequence.
// Usage: npm run build && node bench/batch-weight-bytes.mjs [MODEL] [LAYERS]   (default synthetic:tiny)
import { loadEngine } from '../dist/engine/load-model.js';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const layers = process.argv[3] ? Number(process.argv[3]) : undefined;
const { engine } = await loadEngine(process.argv[2] ?? 'synthetic:tiny', { context: 128, maxNumSeqs: 16, quiet: true, layers });
const prompt = (seed) => Array.from({ length: 16 }, (_, i) => (seed * 7919 + i * 104729) % 199998);
await engine.generate(prompt(99).slice(0, 12), { maxTokens: 2 });
for (const n of [1, 4, 16]) {
  const bytes = engine.countNextStep((tokens, seqs, samples) => tokens === seqs && samples === seqs && seqs === n);
  await Promise.all(Array.from({ length: n }, (_, i) => engine.generate(prompt(n * 100 + i), { maxTokens: 6 })));
  const b = await Promise.race([bytes, Promise.resolve(null)]);
  console.log(JSON.stringify(b ? { sequences: n, weight_bytes_per_step: b.total, by_kernel: b.byKernel } : { sequences: n, weight_bytes_per_step: null, why: 'no step decoded all of them at once' }));
}
engine.destroy();
process.exit(0);
