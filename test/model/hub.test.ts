// resolveModel against a local folder, an in-process mock of the Hugging Face hub API (no network
// is used: every request goes to the `fetch` passed in, or to a closed local port), and the cache.
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { openCheckpoint } from '../../src/model/checkpoint.js';
import {
  ModelResolveError, findCachedSnapshot, resolveModel, stderrProgressBar, type DownloadProgress,
} from '../../src/model/hub.js';
import { ORACLE, copyCheckpoint, removeTempDirs, tempDir } from './fixtures.js';

afterAll(removeTempDirs);

const HUB = 'https://hub.invalid';
const REPO = 'openai/gpt-oss-tiny';
const COMMIT = 'c0ffee0000000000000000000000000000000001';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const gitOid = (b: Uint8Array) => createHash('sha1').update(`blob ${b.byteLength}\0`).update(b).digest('hex');

interface MockHub {
  fetch: typeof fetch;
  /** Every file request: path and the Range header (null for a full GET). */
  requests: { path: string; range: string | null }[];
}

/**
 * A minimal hub: model info, root tree listing, and /resolve with Range support. `failAfter`
 * makes one file's body stop with an error after that many bytes (a dropped connection).
 */
function mockHub(files: Map<string, Uint8Array>, failAfter?: { path: string; bytes: number }): MockHub {
  const requests: MockHub['requests'] = [];
  const json = (v: unknown) => new Response(JSON.stringify(v), { status: 200, headers: { 'Content-Type': 'application/json' } });
  const fetchImpl = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const headers = new Headers(init?.headers);
    const p = decodeURIComponent(url.pathname);
    if (p === `/api/models/${REPO}/revision/main`) {
      return json({ _id: 'x', id: REPO, sha: COMMIT, private: false, lastModified: '2025-08-05T00:00:00Z', downloads: 0, likes: 0 });
    }
    if (p === `/api/models/${REPO}/tree/${COMMIT}`) {
      expect(url.searchParams.get('recursive')).toBe('false');
      const entries: unknown[] = [...files].map(([path, b]) => ({
        type: 'file', path, size: b.byteLength, oid: gitOid(b),
        ...(path.endsWith('.safetensors') ? { lfs: { oid: sha256(b), size: b.byteLength, pointerSize: 134 } } : {}),
      }));
      entries.push({ type: 'directory', path: 'original', size: 0, oid: 'd'.repeat(40) });
      entries.push({ type: 'directory', path: 'metal', size: 0, oid: 'e'.repeat(40) });
      return json(entries);
    }
    const prefix = `/${REPO}/resolve/${COMMIT}/`;
    if (p.startsWith(prefix)) {
      const path = p.slice(prefix.length);
      const body = files.get(path);
      if (!body) return new Response('not found', { status: 404, headers: { 'X-Error-Code': 'EntryNotFound' } });
      const range = headers.get('Range');
      const etag = path.endsWith('.safetensors') ? sha256(body) : gitOid(body);
      let start = 0;
      let end = body.byteLength - 1;
      if (range) {
        const m = /^bytes=(\d+)-(\d+)$/.exec(range)!;
        start = Number(m[1]);
        end = Math.min(Number(m[2]), end);
      }
      if (range !== 'bytes=0-0') requests.push({ path, range });
      const slice = body.slice(start, end + 1);
      const h = {
        ETag: `"${etag}"`, 'Content-Length': String(slice.byteLength),
        ...(range ? { 'Content-Range': `bytes ${start}-${end}/${body.byteLength}` } : {}),
      };
      let stream: ReadableStream<Uint8Array>;
      if (failAfter && failAfter.path === path && range !== 'bytes=0-0') {
        const cut = failAfter.bytes;
        let sent = false;
        // Fail a little after the data went out, like a real reset (an immediate error() would
        // discard chunks still queued in the library's TransformStream).
        stream = new ReadableStream({
          async pull(c) {
            if (sent) {
              await new Promise((r) => setTimeout(r, 50));
              return c.error(new Error('connection reset by mock'));
            }
            sent = true;
            c.enqueue(slice.slice(0, cut));
          },
        }, { highWaterMark: 0 });
      } else {
        stream = new ReadableStream({
          start(c) {
            // Several chunks, so progress is reported more than once per file.
            for (let o = 0; o < slice.byteLength; o += 65536) c.enqueue(slice.slice(o, o + 65536));
            c.close();
          },
        });
      }
      return new Response(stream, { status: range ? 206 : 200, headers: h });
    }
    return new Response('unexpected', { status: 500 });
  };
  return { fetch: fetchImpl as typeof fetch, requests };
}

/** The repository contents: an oracle HF model in 2 shards plus the small files. */
async function repoFiles(): Promise<Map<string, Uint8Array>> {
  const dir = await tempDir('remote');
  await copyCheckpoint('tiny-e64k2', 'hf', dir, { shard: { count: 2, of: (_n, i) => i % 2 } });
  const files = new Map<string, Uint8Array>();
  for (const f of (await readdir(dir)).sort()) files.set(f, new Uint8Array(await readFile(join(dir, f))));
  files.set('generation_config.json', new TextEncoder().encode(JSON.stringify({ eos_token_id: [200002, 199999] })));
  files.set('tokenizer.json', new TextEncoder().encode('{"model": {}}'));
  files.set('README.md', new TextEncoder().encode('not downloaded'));
  return files;
}

describe('resolveModel: local folders and bad specs', () => {
  test('an existing folder is returned as is (absolute)', async () => {
    expect(await resolveModel(join(ORACLE, 'tiny-e64k2', 'hf'))).toBe(join(ORACLE, 'tiny-e64k2', 'hf'));
    const rel = join('..', 'shared', 'oracle', 'tiny-e64k2', 'hf');
    expect(await resolveModel(rel)).toBe(join(ORACLE, 'tiny-e64k2', 'hf'));
  });

  test('a missing path or a file is neither a folder nor a hub id', async () => {
    for (const spec of ['/no/such/folder', './relative/missing/dir/x', join(ORACLE, 'README.md')]) {
      const err = await resolveModel(spec, { offline: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ModelResolveError);
      expect((err as Error).message).toContain(spec);
      expect((err as Error).message).toContain('--model /path/to/folder');
    }
  });
});

describe('resolveModel: hub download into the HF cache', () => {
  test('interrupted download resumes with a range request; cache layout matches huggingface_hub', async () => {
    const files = await repoFiles();
    const cacheDir = await tempDir('cache');
    const shard1 = 'model-00001-of-00002.safetensors';
    const cut = 300_000;
    expect(files.get(shard1)!.byteLength).toBeGreaterThan(cut + 1000);

    // 1) The connection drops in the middle of the second shard.
    const broken = mockHub(files, { path: shard1, bytes: cut });
    const err = await resolveModel(REPO, { cacheDir, hubUrl: HUB, fetch: broken.fetch, offline: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelResolveError);
    expect((err as Error).message).toContain('--model /path/to/folder');
    const storage = join(cacheDir, 'models--openai--gpt-oss-tiny');
    const partial = join(storage, 'blobs', `${sha256(files.get(shard1)!)}.incomplete`);
    expect((await stat(partial)).size).toBe(cut);

    // 2) Run again: only the missing tail of shard 1 is requested.
    const hub = mockHub(files);
    const progress: DownloadProgress[] = [];
    const folder = await resolveModel(REPO, { cacheDir, hubUrl: HUB, fetch: hub.fetch, offline: false, onProgress: (p) => progress.push({ ...p }) });
    expect(folder).toBe(join(storage, 'snapshots', COMMIT));
    const size1 = files.get(shard1)!.byteLength;
    expect(hub.requests.filter((r) => r.path === shard1)).toEqual([{ path: shard1, range: `bytes=${cut}-${size1 - 1}` }]);
    // Files completed in the first run are not fetched again.
    expect(hub.requests.map((r) => r.path)).toEqual([shard1]);

    // Only what the engine needs, nothing from original/ or metal/, no README.
    expect((await readdir(folder)).sort()).toEqual([
      'config.json', 'generation_config.json', 'model-00000-of-00002.safetensors', 'model-00001-of-00002.safetensors',
      'model.safetensors.index.json', 'tokenizer.json',
    ]);
    expect((await readFile(join(storage, 'refs', 'main'), 'utf8'))).toBe(COMMIT);
    for (const f of await readdir(folder)) {
      const p = join(folder, f);
      expect((await lstat(p)).isSymbolicLink()).toBe(true);
      const b = files.get(f)!;
      const etag = f.endsWith('.safetensors') ? sha256(b) : gitOid(b);
      expect(await readlink(p)).toBe(join('..', '..', 'blobs', etag));
      expect(Buffer.from(await readFile(p)).equals(Buffer.from(b))).toBe(true);
    }

    // Progress: each file ends at its total; the resumed shard starts at the cut.
    const last = new Map<string, DownloadProgress>();
    for (const p of progress) last.set(p.file, p);
    expect([...last.keys()].sort()).toEqual((await readdir(folder)).sort());
    for (const p of last.values()) {
      expect(p.bytesDone).toBe(p.bytesTotal);
      expect(p.fileCount).toBe(6);
    }
    const s1 = progress.filter((p) => p.file === shard1).map((p) => p.bytesDone);
    expect(s1[0]).toBe(cut);
    expect(s1.length).toBeGreaterThan(2);
    expect(s1.every((v, i) => i === 0 || v >= s1[i - 1]!)).toBe(true);

    // The snapshot is a loadable checkpoint with the generation_config eos ids.
    const ckpt = await openCheckpoint(folder);
    try {
      expect(ckpt.layout).toBe('hf');
      expect(ckpt.filePaths.length).toBe(2);
      expect(ckpt.config.eosTokenIds).toEqual([383, 200002, 199999]);
    } finally {
      await ckpt.close();
    }

    // 3) A hub that cannot be reached now falls back to the complete cached snapshot,
    //    and offline mode finds it without any request.
    const down = (async () => {
      throw new TypeError('fetch failed');
    }) as typeof fetch;
    expect(await resolveModel(REPO, { cacheDir, hubUrl: HUB, fetch: down, offline: false })).toBe(folder);
    expect(await resolveModel(REPO, { cacheDir, fetch: down, offline: true })).toBe(folder);
    expect(await findCachedSnapshot(REPO, 'main', cacheDir)).toBe(folder);
    expect(await findCachedSnapshot(REPO, COMMIT, cacheDir)).toBe(folder);
  });

  test('a cached snapshot missing a shard is not used', async () => {
    const cacheDir = await tempDir('cache');
    const storage = join(cacheDir, 'models--openai--gpt-oss-tiny');
    const snap = join(storage, 'snapshots', COMMIT);
    await copyCheckpoint('tiny-e64k2', 'hf', snap, { shard: { count: 2, of: (_n, i) => i % 2 } });
    await mkdir(join(storage, 'refs'), { recursive: true });
    await writeFile(join(storage, 'refs', 'main'), COMMIT);
    expect(await findCachedSnapshot(REPO, 'main', cacheDir)).toBe(snap);
    // A dangling pointer (blob deleted) counts as missing.
    await rm(join(snap, 'model-00001-of-00002.safetensors'));
    await symlink('../../blobs/gone', join(snap, 'model-00001-of-00002.safetensors'));
    expect(await findCachedSnapshot(REPO, 'main', cacheDir)).toBeNull();
    const err = await resolveModel(REPO, { cacheDir, offline: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelResolveError);
    expect((err as Error).message).toMatch(/offline mode and no complete copy in the cache .*--model \/path\/to\/folder/);
  });
});

describe('resolveModel: offline failures explain how to pass a folder', () => {
  test('hub unreachable (real fetch to a closed local port), empty cache', async () => {
    const cacheDir = await tempDir('cache');
    const err = await resolveModel('openai/gpt-oss-20b', { cacheDir, hubUrl: 'http://127.0.0.1:9', offline: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelResolveError);
    const msg = (err as Error).message;
    expect(msg).toContain('openai/gpt-oss-20b: could not download from the Hugging Face hub');
    expect(msg).toContain('--model /path/to/folder');
  });

  test('HF_HUB_OFFLINE=1 with an empty cache', async () => {
    const cacheDir = await tempDir('cache');
    const saved = process.env['HF_HUB_OFFLINE'];
    process.env['HF_HUB_OFFLINE'] = '1';
    try {
      const err = await resolveModel('openai/gpt-oss-20b@main', { cacheDir }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ModelResolveError);
      expect((err as Error).message).toContain('offline mode');
      expect((err as Error).message).toContain('--model /path/to/folder');
    } finally {
      if (saved === undefined) delete process.env['HF_HUB_OFFLINE'];
      else process.env['HF_HUB_OFFLINE'] = saved;
    }
  });
});

describe('stderrProgressBar', () => {
  const ev = (file: string, done: number, total: number): DownloadProgress => ({ file, bytesDone: done, bytesTotal: total, fileIndex: 0, fileCount: 2 });

  test('not a terminal: one line per 10 %, one final line', () => {
    const lines: string[] = [];
    const bar = stderrProgressBar({ isTTY: false, write: (s) => lines.push(s) }, 10);
    for (let d = 0; d <= 1000; d += 10) bar(ev('a.safetensors', d, 1000));
    bar(ev('a.safetensors', 1000, 1000));
    expect(lines.length).toBe(11);
    expect(lines[0]).toBe('[          ]   0% (1/2) a.safetensors 0 B/1.0 KB\n');
    expect(lines.at(-1)).toBe('[==========] 100% (1/2) a.safetensors 1.0 KB/1.0 KB\n');
  });

  test('terminal: redraws in place and ends the line once per file', () => {
    const out: string[] = [];
    const bar = stderrProgressBar({ isTTY: true, write: (s) => out.push(s) }, 4);
    bar(ev('b', 0, 2e9));
    bar(ev('b', 1e9, 2e9)); // throttled (< 100 ms after the previous draw)
    bar(ev('b', 2e9, 2e9));
    bar(ev('b', 2e9, 2e9));
    expect(out.length).toBe(2);
    expect(out[0]!.startsWith('\r[    ]   0% (1/2) b 0 B/2.0 GB')).toBe(true);
    expect(out[1]!.startsWith('\r[====] 100% (1/2) b 2.0 GB/2.0 GB')).toBe(true);
    expect(out[1]!.endsWith('\n')).toBe(true);
  });
});
