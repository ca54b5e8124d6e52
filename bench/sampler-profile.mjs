// GPU time per decode step by kernel for greedy and for each sampled setting, from the same
// engine and interleaved rounds (so machine load hits every setting alike): the sampler's cost
// is the sampled step's time over greedy's. Medians over ROUNDS profiled steps per setting.
// Usage: npm run build && node bench/sampler-profile.mjs [MODEL] [ROUNDS]   (default synthetic:tiny, 5)
import { loadEngine } from '../dist/engine/load-model.js';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const model = process.argv[2] ?? 'synthetic:tiny';
const rounds = Number(process.argv[3] ?? 5);
const settings = {
  greedy: { temperature: 0 },
  't1': { temperature: 1 },
  't1_top_p0.9': { temperature: 1, topP: 0.9 },
  't1_top_k50': { temperature: 1, topK: 50 },
};
const { engine } = await loadEngine(model, { context: 256, quiet: true });
const prompt = (seed) => Array.from({ length: 16 }, (_, i) => (seed * 7919 + i * 104729) % 199998);
const times = Object.fromEntries(Object.keys(settings).map((k) => [k, []]));
for (let r = 0; r <= rounds; r++) {
  for (const [name, s] of Object.entries(settings)) {
    const p = engine.profileNextStep((tokens, seqs, samples) => tokens === 1 && seqs === 1 && samples === 1);
    await engine.generate(prompt(r * 10 + 1), { maxTokens: 3, stopTokens: [], seed: r + 1, ...s });
    const list = await p;
    // round 0 compiles the pipelines
    if (r > 0) times[name].push(list);
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const out = {};
for (const [name, steps] of Object.entries(times)) {
  const byLabel = {};
  for (const list of steps) {
    const m = {};
    for (const { label, ms } of list) {
      const k = label.replace(/^layers\.\d+\./, '');
      m[k] = (m[k] ?? 0) + ms;
    }
    m.total = list.reduce((a, d) => a + d.ms, 0);
    for (const [k, ms] of Object.entries(m)) (byLabel[k] ??= []).push(ms);
  }
  out[name] = Object.fromEntries(Object.entries(byLabel).map(([k, a]) => [k, Math.round(median(a) * 1e3) / 1e3]));
}
for (const name of Object.keys(out)) out[name].ratio_to_greedy = Math.round((out.greedy.total / out[name].total) * 100) / 100;
console.log(JSON.stringify(out, null, 1));
engine.destroy();
process.exit(0);
