// GPU time (timestamp queries around one compute pass) of one MoE layer on gpt-oss-20b layer
// dimensions (hidden 2880, intermediate 2880, 32 experts, top-4; experts in shards of 8 so every
// binding stays under lavapipe's 128 MiB) for steps of M tokens: today's path (the per-(token,
// slot) matvecs below 8 tokens, the grouped 32-row GEMM from 8) against the small-step path
// (moe_route_parallel + moe_grouped_matvec + moe_gather), in one run, with each path's weight bytes
// and multiply-adds. The two paths' outputs are compared, so a broken kernel cannot look fast.
// With --dense, also the bf16 qkv / attn_out / router products: matmul_bf16 (8 tokens per tile)
// against the multi-row matvec (dense-rows).
// today = the policy before it was wired in (below 8 tokens the matvecs, from 8 the GEMM).
// Usage: npm run build && node bench/small-m.mjs [--ms 1,2,4,8,16,32,64] [--reps 3] [--dense]
//   [--profile: each MoE dispatch timed in its own pass] [--pass 4|8|12|16: rows per grouped pass]
import { acquireGpu } from '../dist/gpu/device.js';
import { ShaderCache, subgroupLayoutHolds } from '../dist/gpu/shaders.js';
import { encodeDispatches, groupsOf, readBuffer, storageBuffer, uploadBuffer, writeBuffer } from '../dist/gpu/buffers.js';
import { OpContext } from '../dist/engine/ops/context.js';
import { allocateMoeGroup, GEMM_TILE, moeDownOp, moeGroupedOps, moeUpOp } from '../dist/engine/ops/moe.js';
import { allocateMoeSmallM, moeSmallMOps } from '../dist/engine/ops/moe-smallm.js';
import { matmulOp } from '../dist/engine/ops/basic.js';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
};
const MS = String(arg('ms', '1,2,4,8,16,32,64')).split(',').map(Number);
const REPS = Number(arg('reps', 3));
const DENSE = process.argv.includes('--dense');
const H = 2880, I = 2880, E = 32, K = 4, SHARD = 8, LIMIT = 7;
const MAXT = Math.max(...MS);

const gpu = await acquireGpu({ robust: false });
if (!gpu.features.timestampQuery) throw new Error('this adapter has no timestamp-query');
const shaders = new ShaderCache(gpu, await subgroupLayoutHolds(gpu));
const ctx = new OpContext(gpu, shaders);

let seed = 0x9e3779b9;
const rand32 = () => {
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed;
};
const rnd = () => rand32() / 4294967296;
const gauss = () => Math.sqrt(-2 * Math.log(Math.max(rnd(), 1e-12))) * Math.cos(2 * Math.PI * rnd());
const f32s = (n, scale = 1) => Float32Array.from({ length: n }, () => gauss() * scale);
const randomBytes = (n) => {
  const u = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < u.length; i++) u[i] = rand32();
  return new Uint8Array(u.buffer, 0, n);
};
// scale bytes 2^-9 .. 2^-2, like the tests: outputs of order 1 after 2880-long dot products
const scaleBytes = (n) => Uint8Array.from({ length: n }, () => 118 + (rand32() & 7));

const experts = [];
for (let first = 0; first < E; first += SHARD) {
  const c = SHARD;
  experts.push({
    first,
    count: c,
    mlp1Blocks: uploadBuffer(gpu, randomBytes((c * 2 * I * H) / 2), 'w1.blocks'),
    mlp1Scales: uploadBuffer(gpu, scaleBytes((c * 2 * I * H) / 32), 'w1.scales'),
    mlp1Bias: uploadBuffer(gpu, f32s(c * 2 * I, 0.5), 'b1'),
    mlp2Blocks: uploadBuffer(gpu, randomBytes((c * H * I) / 2), 'w2.blocks'),
    mlp2Scales: uploadBuffer(gpu, scaleBytes((c * H * I) / 32), 'w2.scales'),
    mlp2Bias: uploadBuffer(gpu, f32s(c * H, 0.5), 'b2'),
  });
}
const dims = { hidden: H, intermediate: I, topK: K, numExperts: E, swigluLimit: LIMIT };
const xn = uploadBuffer(gpu, f32s(MAXT * H), 'xn');
const x0 = f32s(MAXT * H, 2);
const x = storageBuffer(gpu, MAXT * H * 4, 'x');
const routing = storageBuffer(gpu, MAXT * K * 8, 'routing');
const hMat = storageBuffer(gpu, MAXT * K * I * 4, 'h');
const hGrp = storageBuffer(gpu, MAXT * K * I * 4, 'h.grouped');
const group = allocateMoeGroup(gpu, MAXT, { numExperts: E, expertsPerToken: K, hiddenSize: H });
const small = allocateMoeSmallM(gpu, MAXT, { numExperts: E, expertsPerToken: K, hiddenSize: H });

// "today" is the policy before the small-step path was wired in (engine commit fb991ed): the
// per-(token, slot) matvecs below 8 tokens, the grouped 32-row GEMM from 8
const OLD_SWITCH = 8;
const below = (d) => ({ ...d, when: (s) => s.tokens < OLD_SWITCH });
const today = [
  ...experts.map((e) => below(moeUpOp(ctx, { ...dims, xn, routing, blocks: e.mlp1Blocks, scales: e.mlp1Scales, bias: e.mlp1Bias, firstExpert: e.first, expertCount: e.count, h: hMat, label: `mlp1.${e.first}` }))),
  ...experts.map((e) => below(moeDownOp(ctx, { ...dims, h: hMat, routing, blocks: e.mlp2Blocks, scales: e.mlp2Scales, bias: e.mlp2Bias, firstExpert: e.first, expertCount: e.count, x, label: `mlp2.${e.first}` }))),
  ...moeGroupedOps(ctx, { ...dims, xn, routing, h: hGrp, x, group, experts, minTokens: OLD_SWITCH, label: 'grouped' }),
];
const fresh = moeSmallMOps(ctx, { ...dims, xn, routing, h: hGrp, x, group: small, experts, minTokens: 1, passRows: Number(arg('pass', 16)), label: 'smallm' });

/** k distinct experts per token, softmax weights. */
function randomRouting(T) {
  const ids = new Uint32Array(T * K);
  const packed = new Uint32Array(T * K * 2);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let t = 0; t < T; t++) {
    const chosen = new Set();
    while (chosen.size < K) chosen.add(rand32() % E);
    const l = [...chosen].map(() => gauss());
    const m = Math.max(...l);
    const ex = l.map((v) => Math.exp(v - m));
    const sum = ex.reduce((a, b) => a + b, 0);
    [...chosen].forEach((e, j) => {
      ids[t * K + j] = e;
      f[0] = ex[j] / sum;
      packed[2 * (t * K + j)] = e;
      packed[2 * (t * K + j) + 1] = u[0];
    });
  }
  return { ids, packed };
}

async function timed(ops, shape) {
  const qs = gpu.device.createQuerySet({ type: 'timestamp', count: 2 });
  const res = gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  writeBuffer(gpu, x, 0, x0.subarray(0, shape.tokens * H));
  ctx.writeStep(shape);
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
  const n = encodeDispatches(pass, ops, shape);
  pass.end();
  enc.resolveQuerySet(qs, 0, 2, res, 0);
  gpu.device.queue.submit([enc.finish()]);
  const ts = new BigInt64Array(await readBuffer(gpu, res));
  qs.destroy();
  res.destroy();
  return { ms: Number(ts[1] - ts[0]) / 1e6, dispatches: n };
}

/** GPU ms of each dispatch in its own pass (--profile). */
async function profiled(ops, shape) {
  const list = ops.filter((o) => groupOn(o, shape));
  const qs = gpu.device.createQuerySet({ type: 'timestamp', count: 2 * list.length });
  const res = gpu.device.createBuffer({ size: 16 * list.length, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  writeBuffer(gpu, x, 0, x0.subarray(0, shape.tokens * H));
  ctx.writeStep(shape);
  const enc = gpu.device.createCommandEncoder();
  list.forEach((d, i) => {
    const pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
    encodeDispatches(pass, [d], shape);
    pass.end();
  });
  enc.resolveQuerySet(qs, 0, 2 * list.length, res, 0);
  gpu.device.queue.submit([enc.finish()]);
  const ts = new BigInt64Array(await readBuffer(gpu, res));
  qs.destroy();
  res.destroy();
  return Object.fromEntries(list.map((d, i) => [d.label, +(Number(ts[2 * i + 1] - ts[2 * i]) / 1e6).toFixed(1)]));
}

const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
const sum = (ops, f) => ops.reduce((s, o) => s + (f(o) ?? 0), 0);
const rows = [];
console.error(`adapter: ${gpu.info.description || gpu.info.device}; subgroups ${shaders.useSubgroups}; reps ${REPS}`);
for (const M of MS) {
  const r = randomRouting(M);
  writeBuffer(gpu, routing, 0, r.packed);
  const shape = { tokens: M, rows: 0, samples: 0 };
  const rt = { ids: () => r.ids };
  const counts = new Array(E).fill(0);
  for (const id of r.ids) counts[id]++;
  const used = counts.filter((c) => c > 0).length;
  const per = (2 * I * H) / 2 + (2 * I * H) / 32 + 2 * I * 4 + (H * I) / 2 + (H * I) / 32 + H * 4;
  // today's multiply-adds: per (token, slot) below 8 tokens; 32-row tiles from 8
  const todayMacs = sum(today, (o) => (groupOn(o, shape) ? o.macs?.(shape, rt) : 0));
  // warm-up (pipeline compilation, first touch) and the outputs of both paths compared
  await timed(today, shape);
  const xa = new Float32Array(await readBuffer(gpu, x, 0, M * H * 4));
  await timed(fresh, shape);
  const xb = new Float32Array(await readBuffer(gpu, x, 0, M * H * 4));
  let maxDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < xa.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(xa[i] - xb[i]));
    maxAbs = Math.max(maxAbs, Math.abs(xa[i]));
  }
  if (!(maxDiff <= 1e-3 * Math.max(1, maxAbs))) throw new Error(`M=${M}: the paths disagree (max diff ${maxDiff}, max |x| ${maxAbs})`);
  const ta = [];
  const tb = [];
  let da = 0;
  let db = 0;
  for (let i = 0; i < REPS; i++) {
    // alternate so a load change on the shared machine hits both paths alike
    const a = await timed(today, shape);
    const b = await timed(fresh, shape);
    ta.push(a.ms);
    tb.push(b.ms);
    da = a.dispatches;
    db = b.dispatches;
  }
  const row = {
    kernel: 'moe', M, used_experts: used,
    today_ms: +median(ta).toFixed(2), new_ms: +median(tb).toFixed(2), speedup: +(median(ta) / median(tb)).toFixed(2),
    today_dispatches: da, new_dispatches: db,
    weight_bytes_floor: used * per,
    today_weight_bytes: sum(today, (o) => (groupOn(o, shape) ? o.weightBytes?.(shape, rt) : 0)),
    new_weight_bytes: sum(fresh, (o) => o.weightBytes?.(shape, rt)),
    today_macs: todayMacs,
    new_macs: sum(fresh, (o) => o.macs?.(shape, rt)),
    max_abs_diff: +maxDiff.toExponential(2),
  };
  rows.push(row);
  console.log(JSON.stringify(row));
  if (process.argv.includes('--profile')) console.log(JSON.stringify({ M, today: await profiled(today, shape), new: await profiled(fresh, shape) }));
}

function groupOn(o, shape) {
  return groupsOf(o, shape) !== null;
}

if (DENSE) {
  const { denseRowsOps } = await import('../dist/engine/ops/dense-rows.js');
  // qkv (2880 -> 5120), attn_out (4096 -> 2880, residual add), router (2880 -> 32)
  const mats = [
    { name: 'qkv', k: H, n: 5120, accumulate: false },
    { name: 'attn_out', k: 4096, n: H, accumulate: true },
    { name: 'router', k: H, n: E, accumulate: false },
  ];
  for (const m of mats) {
    const w = uploadBuffer(gpu, new Uint16Array(randomBytes(m.k * m.n * 2).buffer), `${m.name}.w`);
    const bias = uploadBuffer(gpu, f32s(m.n, 0.1), `${m.name}.b`);
    const xin = uploadBuffer(gpu, f32s(MAXT * m.k), `${m.name}.x`);
    const y = storageBuffer(gpu, MAXT * m.n * 4, `${m.name}.y`);
    const a = { x: xin, w, bias, y, k: m.k, n: m.n, accumulate: m.accumulate, label: m.name };
    const old = [matmulOp(ctx, a)];
    const neu = denseRowsOps(ctx, a);
    for (const M of MS) {
      const shape = { tokens: M, rows: 0, samples: 0 };
      await timed(old, shape);
      await timed(neu, shape);
      const ta = [];
      const tb = [];
      for (let i = 0; i < REPS; i++) {
        ta.push((await timed(old, shape)).ms);
        tb.push((await timed(neu, shape)).ms);
      }
      const rt = { ids: () => new Uint32Array(0) };
      const row = {
        kernel: m.name, M,
        today_ms: +median(ta).toFixed(2), new_ms: +median(tb).toFixed(2), speedup: +(median(ta) / median(tb)).toFixed(2),
        today_weight_bytes: sum(old, (o) => o.weightBytes?.(shape, rt)),
        new_weight_bytes: sum(neu, (o) => (groupOn(o, shape) ? o.weightBytes?.(shape, rt) : 0)),
        new_macs: sum(neu, (o) => (groupOn(o, shape) ? o.macs?.(shape, rt) : 0)),
      };
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  }
}
gpu.device.destroy();
process.exit(0);
