#!/usr/bin/env node
// Soak and chaos run against two real replicas (`serve`, loopback only) sharing one Redis: for
// --duration seconds, waves of mixed traffic at a random concurrency up to 2 x --max-num-seqs
// (Chat Completions, Completions and Responses, streamed and not, tool and JSON-schema requests,
// previous_response_id chains and item_reference inputs across the replicas, malformed bodies,
// oversized prompts), 30 % of requests aborted at a random point; in the middle one replica is
// sent SIGTERM and started again, and each replica's GPU device is destroyed once (the test hook).
//
// It checks, and records: requests per outcome (no 5xx but the injected device_lost and
// shutting_down), every stream not aborted ends properly ([DONE], or response.completed), every
// stored response is retrievable from the other replica, RSS and KV pages back to the baseline
// after each wave, p50/p99 latency. Bounded in time (--duration) and count (--max-requests).
// Exit status 1 when a check failed.
//
// Usage: npx tsc -p tsconfig.json && node bench/soak.mjs [--duration 3600] [--model synthetic:tiny]
//   [--max-num-seqs 4] [--context 2048] [--wave-seconds 60] [--max-requests 1000000]
//   [--redis redis://127.0.0.1:6379/0 (default: a redis-server of its own)] [--out results.json]
//   [--seed 1] [--no-restart] [--no-device-loss]
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { freePort, startRedis } from './local-redis.mjs';
import { READY_TIMEOUT_MS, Replica } from './soak-replica.mjs';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '600' },
    model: { type: 'string', default: 'synthetic:tiny' },
    'max-num-seqs': { type: 'string', default: '4' },
    context: { type: 'string', default: '2048' },
    'wave-seconds': { type: 'string', default: '60' },
    'max-requests': { type: 'string', default: '1000000' },
    redis: { type: 'string' },
    out: { type: 'string' },
    seed: { type: 'string', default: '1' },
    'no-restart': { type: 'boolean', default: false },
    'no-device-loss': { type: 'boolean', default: false },
  },
});
const DURATION_MS = Number(args.duration) * 1000;
const MAX_NUM_SEQS = Number(args['max-num-seqs']);
const CONTEXT = Number(args.context);
const WAVE_MS = Number(args['wave-seconds']) * 1000;
const MAX_REQUESTS = Number(args['max-requests']);
const MODEL = args.model;
/** Bound of one request. */
const REQUEST_TIMEOUT_MS = 180_000;
const ABORT_SHARE = 0.3;

// A small seeded generator (mulberry32): the same seed gives the same mix.
let rngState = Number(args.seed) >>> 0;
function rand() {
  rngState = (rngState + 0x6d2b79f5) >>> 0;
  let t = rngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const randInt = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (msg) => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ---------------------------------------------------------------------------------------------
// Traffic

const stats = {
  outcomes: {},
  latencies: [],
  latencyByKind: {},
  streamsChecked: 0,
  streamsUnterminated: [],
  unexpected: [],
  stored: [],
  storedMissing: [],
  storedChecked: 0,
  waves: [],
  injected: [],
  requests: 0,
};
const latency = (kind, ms) => {
  stats.latencies.push(ms);
  (stats.latencyByKind[kind] ??= []).push(ms);
};
const count = (key) => (stats.outcomes[key] = (stats.outcomes[key] ?? 0) + 1);
/** 5xx the run injects itself. */
const ALLOWED_5XX = new Set(['device_lost', 'shutting_down']);

const user = (text) => [{ role: 'user', content: text }];
const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima'];
const sentence = () => Array.from({ length: randInt(1, 30) }, () => pick(WORDS)).join(' ');
const weatherTool = { type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };
// Keywords the structured-output engine supports (src/constrain/schema.ts); the server bounds string lengths itself.
const schema = { type: 'object', properties: { answer: { type: 'string' }, score: { type: 'integer' }, tag: { enum: ['a', 'b'] } }, required: ['answer', 'score', 'tag'], additionalProperties: false };

/** One request of the mix: [kind, route, body (object or raw string), stream?, expected status class]. */
function makeRequest() {
  const maxTokens = randInt(1, 12);
  const r = rand();
  const seed = randInt(0, 1e6);
  if (r < 0.14) return { kind: 'chat', route: '/v1/chat/completions', body: { model: MODEL, messages: user(sentence()), max_tokens: maxTokens, seed } };
  if (r < 0.28) return { kind: 'chat_stream', route: '/v1/chat/completions', stream: 'done', body: { model: MODEL, messages: user(sentence()), max_tokens: maxTokens, seed, stream: true, stream_options: { include_usage: true } } };
  if (r < 0.36) return { kind: 'completions', route: '/v1/completions', body: { model: MODEL, prompt: sentence(), max_tokens: maxTokens, seed } };
  if (r < 0.44) return { kind: 'completions_stream', route: '/v1/completions', stream: 'done', body: { model: MODEL, prompt: sentence(), max_tokens: maxTokens, seed, stream: true } };
  if (r < 0.54) return { kind: 'responses', route: '/v1/responses', stores: true, body: { model: MODEL, input: sentence(), max_output_tokens: maxTokens } };
  if (r < 0.64) return { kind: 'responses_stream', route: '/v1/responses', stream: 'responses', stores: true, body: { model: MODEL, input: sentence(), max_output_tokens: maxTokens, stream: true } };
  if (r < 0.70) return { kind: 'tools', route: '/v1/chat/completions', body: { model: MODEL, messages: user(`Weather in ${pick(WORDS)}?`), tools: [weatherTool], tool_choice: pick(['auto', 'required']), max_tokens: randInt(8, 40), seed } };
  if (r < 0.76) return { kind: 'json_schema', route: '/v1/chat/completions', body: { model: MODEL, messages: user('Answer as JSON'), response_format: { type: 'json_schema', json_schema: { name: 'a', schema, strict: true } }, max_tokens: randInt(10, 60), seed } };
  if (r < 0.86) return { kind: 'chain', route: '/v1/responses', stores: true, chain: true, body: { model: MODEL, input: sentence(), max_output_tokens: maxTokens } };
  if (r < 0.93) {
    const bad = pick([
      '{"model": "x", "messages": [',
      JSON.stringify({ model: MODEL, messages: 'not a list' }),
      JSON.stringify({ model: MODEL, messages: [{ role: 'wizard', content: 'x' }] }),
      JSON.stringify({ model: MODEL, prompt: 'x', max_tokens: -5 }),
      JSON.stringify({ model: MODEL, input: 'x', temperature: 'hot' }),
      '\u0000\u0001garbage',
      // (an unknown field is no longer one: the server ignores it and names it in x-gpt-oss-ignored-params)
      JSON.stringify({ model: MODEL, messages: user('x'), max_tokens: 'many' }),
    ]);
    return { kind: 'malformed', route: pick(['/v1/chat/completions', '/v1/completions', '/v1/responses']), body: bad, expect4xx: true };
  }
  // Oversized: a prompt over the context.
  return { kind: 'oversized', route: '/v1/chat/completions', body: { model: MODEL, messages: user(' hello'.repeat(CONTEXT + 200)), max_tokens: 4 }, expect4xx: true };
}

/** Reads an SSE body; returns { ended: how it ended, error code of an error event }. */
async function readStream(res, style, abortAfterEvents, ac) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let events = 0;
  let last = null;
  let errorCode = null;
  let done = false;
  let response = null;
  for (;;) {
    const { value, done: eof } = await reader.read();
    if (eof) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      if (!data) continue;
      events++;
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      try {
        const j = JSON.parse(data);
        if (j.error) errorCode = j.error.code ?? 'error';
        if (j.type) last = j.type;
        if (j.type === 'response.completed' || j.type === 'response.incomplete') response = j.response;
      } catch {
        last = 'unparsable';
      }
      if (abortAfterEvents !== null && events >= abortAfterEvents) {
        ac.abort();
        await reader.cancel().catch(() => {});
        return { aborted: true };
      }
    }
  }
  if (style === 'done') return { ok: done, errorCode };
  return { ok: last === 'response.completed' || last === 'response.incomplete', errorCode, response };
}

const upReplicas = (replicas) => replicas.filter((r) => r.up);

async function oneRequest(replicas) {
  const live = upReplicas(replicas);
  if (!live.length) {
    await sleep(200);
    return;
  }
  const target = pick(live);
  const req = makeRequest();
  if (req.chain) {
    const prev = stats.stored.length ? pick(stats.stored.slice(-200)) : null;
    if (prev) {
      // Continue a conversation, often on the other replica; sometimes by item_reference too.
      req.body.previous_response_id = prev.id;
      if (rand() < 0.3 && prev.itemId) req.body.input = [{ type: 'item_reference', id: prev.itemId }, { type: 'message', role: 'user', content: sentence() }];
    }
  }
  const abort = rand() < ABORT_SHARE;
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), REQUEST_TIMEOUT_MS);
  let abortTimer = null;
  const abortAfterEvents = abort && req.stream ? randInt(0, 4) : null;
  if (abort && !req.stream) abortTimer = setTimeout(() => ac.abort(), randInt(0, 3000));
  if (abort && req.stream && abortAfterEvents === 0) abortTimer = setTimeout(() => ac.abort(), randInt(0, 1500));
  stats.requests++;
  const t0 = performance.now();
  try {
    const res = await fetch(`${target.url}${req.route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof req.body === 'string' ? req.body : JSON.stringify(req.body),
      signal: ac.signal,
    });
    if (res.status >= 500) {
      const j = await res.json().catch(() => ({}));
      const code = j?.error?.code ?? 'unknown';
      count(`${req.kind}:${res.status}:${code}`);
      if (!ALLOWED_5XX.has(code)) stats.unexpected.push({ kind: req.kind, status: res.status, code, replica: target.name });
      return;
    }
    if (req.stream && res.status === 200) {
      const r = await readStream(res, req.stream, abortAfterEvents || null, ac);
      if (r.aborted) return count(`${req.kind}:aborted`);
      stats.streamsChecked++;
      if (r.errorCode) {
        count(`${req.kind}:stream_error:${r.errorCode}`);
        if (!ALLOWED_5XX.has(r.errorCode)) stats.unexpected.push({ kind: req.kind, stream: true, code: r.errorCode, replica: target.name });
        return;
      }
      if (!r.ok) stats.streamsUnterminated.push({ kind: req.kind, replica: target.name });
      count(`${req.kind}:200`);
      latency(req.kind, performance.now() - t0);
      if (req.stores && r.response) remember(r.response, target);
      return;
    }
    const text = await res.text();
    count(`${req.kind}:${res.status}`);
    // A long chain may outgrow the context: that 400 is the right answer.
    const outgrown = req.chain && res.status === 400 && text.includes('context_length_exceeded');
    if (req.expect4xx ? !(res.status >= 400 && res.status < 500) : res.status !== 200 && !outgrown) {
      stats.unexpected.push({ kind: req.kind, status: res.status, body: text.slice(0, 300), replica: target.name });
    }
    if (res.status === 200) {
      latency(req.kind, performance.now() - t0);
      if (req.stores) remember(JSON.parse(text), target);
    }
  } catch (e) {
    if (ac.signal.aborted && abort) return count(`${req.kind}:aborted`);
    // A replica going away under the request (SIGTERM, its restart) cuts connections.
    const why = e?.cause?.code ?? e?.name ?? 'error';
    count(`${req.kind}:network:${why}`);
    if (target.up && !stats.injected.some((x) => x.replica === target.name && performance.now() - x.at < 30_000)) {
      stats.unexpected.push({ kind: req.kind, network: why, replica: target.name });
    }
  } finally {
    clearTimeout(timer);
    clearTimeout(abortTimer);
  }
}

/** A stored response (to check on the other replica, and to continue later). */
function remember(response, replica) {
  stats.stored.push({ id: response.id, itemId: response.output?.find((o) => o.id)?.id ?? null, on: replica.name });
}

/** Every response stored since `from` is found on a replica other than the one that made it. */
async function checkStored(replicas, from) {
  const live = upReplicas(replicas);
  for (const s of stats.stored.slice(from)) {
    const other = live.find((r) => r.name !== s.on) ?? live[0];
    if (!other) return;
    stats.storedChecked++;
    try {
      const r = await fetch(`${other.url}/v1/responses/${s.id}`, { signal: AbortSignal.timeout(10_000) });
      if (r.status !== 200) stats.storedMissing.push({ id: s.id, on: s.on, from: other.name, status: r.status });
    } catch (e) {
      stats.storedMissing.push({ id: s.id, on: s.on, from: other.name, error: String(e) });
    }
  }
}

async function wave(replicas, index, endAt, events) {
  const concurrency = randInt(1, 2 * MAX_NUM_SEQS);
  const storedFrom = stats.stored.length;
  const requestsFrom = stats.requests;
  const t0 = Date.now();
  // A wave with chaos still to do runs (half a wave) even past the end.
  const until = t0 >= endAt ? t0 + WAVE_MS / 2 : Math.min(endAt, t0 + WAVE_MS);
  const workers = Array.from({ length: concurrency }, async () => {
    while (Date.now() < until && stats.requests < MAX_REQUESTS) await oneRequest(replicas);
  });
  // Chaos during the wave, at its middle.
  const chaos = (async () => {
    for (const ev of events.filter((e) => e.wave === index)) {
      await sleep(Math.max(0, (until - Date.now()) / 2));
      await ev.run();
    }
  })();
  await Promise.all([...workers, chaos]);
  // Back to baseline: wait for idle, then look at KV pages and RSS.
  const after = [];
  for (const r of upReplicas(replicas)) {
    const idle = await r.idle();
    const m = await r.metrics().catch(() => null);
    const rss = r.rss();
    // A fresh process or device (restart, reload after the device loss) sets a new baseline: its
    // first idle point after the event.
    if (r.rebaseline && idle) {
      r.rebaseline = false;
      r.baselines.push(rss);
      r.baselineRss = rss;
    }
    after.push({ replica: r.name, idle, kvPagesUsed: m?.kvPagesUsed ?? null, kvPositions: m?.kvPositions ?? null, rssMiB: rss && Math.round(rss / 2 ** 20), baselineMiB: r.baselineRss && Math.round(r.baselineRss / 2 ** 20) });
  }
  await checkStored(replicas, storedFrom);
  const w = { wave: index, concurrency, seconds: Math.round((Date.now() - t0) / 1000), requests: stats.requests - requestsFrom, stored: stats.stored.length - storedFrom, after };
  stats.waves.push(w);
  log(`wave ${index}: concurrency ${concurrency}, ${w.requests} requests, ${JSON.stringify(after)}`);
}

function percentile(xs, p) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]);
}

// ---------------------------------------------------------------------------------------------

let replicasSeen = [];

async function main() {
  const started = Date.now();
  const loadStart = os.loadavg();
  const redis = args.redis ? null : await startRedis();
  const redisUrl = args.redis ?? redis.url;
  log(`redis at ${redisUrl}`);
  const replicaOpts = { model: MODEL, context: CONTEXT, maxNumSeqs: MAX_NUM_SEQS };
  const replicas = [new Replica('a', await freePort(), redisUrl, replicaOpts), new Replica('b', await freePort(), redisUrl, replicaOpts)];
  replicasSeen = replicas;
  // Stopped itself (SIGINT, SIGTERM): take the replicas and Redis down too, then exit.
  const onSignal = async (sig) => {
    log(`${sig}: stopping the replicas and Redis`);
    for (const r of replicas) if (r.child) r.child.kill('SIGKILL');
    await redis?.stop();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let failed = false;
  try {
    for (const r of replicas) r.start();
    for (const r of replicas) log(`replica ${r.name} healthy after ${await r.waitHealthy()} ms (pid ${r.pid})`);
    // Warm-up: one request each, then the baselines.
    for (const r of replicas) {
      await fetch(`${r.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, messages: user('warm up'), max_tokens: 2 }) });
      await r.idle();
      r.baselineRss = r.rss();
      r.baselines.push(r.baselineRss);
    }
    const endAt = started + DURATION_MS;
    const waves = Math.max(1, Math.ceil((endAt - Date.now()) / WAVE_MS));
    const events = [];
    const mid = Math.floor(waves / 2);
    if (!args['no-device-loss']) {
      for (const [r, w] of [[replicas[0], Math.max(0, Math.floor(waves / 4))], [replicas[1], Math.min(waves - 1, Math.floor((3 * waves) / 4))]]) {
        events.push({
          wave: w,
          run: async () => {
            log(`destroying the GPU device of replica ${r.name}`);
            stats.injected.push({ what: 'device_lost', replica: r.name, at: performance.now() });
            const res = await fetch(`${r.url}/test-hooks/device-lost`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
            const t0 = Date.now();
            // /health turns 503 while it reloads, then 200.
            let sawDown = false;
            while (Date.now() - t0 < READY_TIMEOUT_MS) {
              const h = await fetch(`${r.url}/health`).then((x) => x.status, () => 0);
              if (h === 503) sawDown = true;
              if (h === 200 && sawDown) break;
              await sleep(100);
            }
            stats.injected.at(-1).hook = res.status;
            stats.injected.at(-1).healthDropped = sawDown;
            stats.injected.at(-1).recoveredMs = Date.now() - t0;
            r.rebaseline = true;
            log(`replica ${r.name} recovered ${Date.now() - t0} ms after its device loss`);
          },
        });
      }
    }
    if (!args['no-restart']) {
      events.push({
        wave: mid,
        run: async () => {
          const r = replicas[randInt(0, 1)];
          log(`SIGTERM to replica ${r.name}`);
          stats.injected.push({ what: 'sigterm', replica: r.name, at: performance.now() });
          const exit = await r.stop();
          stats.injected.at(-1).exit = exit;
          r.start();
          const ms = await r.waitHealthy();
          r.rebaseline = true;
          stats.injected.at(-1).restartMs = ms;
          log(`replica ${r.name} exited ${JSON.stringify(exit)}, back after ${ms} ms`);
        },
      });
    }
    for (let i = 0; (Date.now() < endAt || events.some((e) => e.wave >= i)) && i < waves + 2 && stats.requests < MAX_REQUESTS; i++) await wave(replicas, i, endAt, events);
    // Everything stored during the run, from both replicas (a bounded sample).
    const sample = stats.stored.length > 2000 ? stats.stored.filter((_, i) => i % Math.ceil(stats.stored.length / 2000) === 0) : stats.stored;
    for (const s of sample) {
      for (const r of replicas) {
        const st = await fetch(`${r.url}/v1/responses/${s.id}`).then((x) => x.status, () => 0);
        if (st !== 200) stats.storedMissing.push({ id: s.id, on: s.on, from: r.name, status: st, final: true });
      }
    }
  } catch (e) {
    failed = true;
    log(`aborted: ${e.stack ?? e}`);
  } finally {
    for (const r of replicas) await r.stop();
    await redis?.stop();
  }

  const kvBack = stats.waves.every((w) => w.after.every((a) => a.idle && a.kvPagesUsed === 0 && a.kvPositions === 0));
  const rssGrowth = stats.waves.flatMap((w) => w.after.map((a) => (a.rssMiB && a.baselineMiB ? a.rssMiB / a.baselineMiB : 1)));
  const summary = {
    command: `node bench/soak.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    model: MODEL,
    maxNumSeqs: MAX_NUM_SEQS,
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, loadavgStart: loadStart.map((x) => Math.round(x * 10) / 10), loadavgEnd: os.loadavg().map((x) => Math.round(x * 10) / 10) },
    seconds: Math.round((Date.now() - started) / 1000),
    requests: stats.requests,
    outcomes: Object.fromEntries(Object.entries(stats.outcomes).sort()),
    unexpected: stats.unexpected.slice(0, 50),
    unexpectedCount: stats.unexpected.length,
    streamsChecked: stats.streamsChecked,
    streamsUnterminated: stats.streamsUnterminated.length,
    stored: stats.stored.length,
    storedChecked: stats.storedChecked,
    storedMissing: stats.storedMissing.slice(0, 50),
    storedMissingCount: stats.storedMissing.length,
    injected: stats.injected.map(({ at, ...x }) => x),
    kvBackToBaseline: kvBack,
    maxRssOverBaseline: Math.round(Math.max(...rssGrowth) * 100) / 100,
    latencyMs: { n: stats.latencies.length, p50: percentile(stats.latencies, 50), p99: percentile(stats.latencies, 99) },
    latencyByKindMs: Object.fromEntries(Object.entries(stats.latencyByKind).sort().map(([k, xs]) => [k, { n: xs.length, p50: percentile(xs, 50), p99: percentile(xs, 99) }])),
    rssBaselinesMiB: Object.fromEntries(replicasSeen.map((r) => [r.name, r.baselines.map((b) => b && Math.round(b / 2 ** 20))])),
    waves: stats.waves,
    failed,
  };
  summary.ok = !failed && summary.unexpectedCount === 0 && summary.streamsUnterminated === 0 && summary.storedMissingCount === 0 && kvBack && summary.maxRssOverBaseline < 1.5;
  const json = JSON.stringify(summary, null, 2);
  if (args.out) writeFileSync(args.out, json);
  process.stdout.write(`${json}\n`);
  process.exit(summary.ok ? 0 : 1);
}

await main();
