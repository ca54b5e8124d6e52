// Model folder resolution: a local folder as is, or a Hugging Face hub id downloaded into the
// standard HF cache (models--org--name/{blobs,snapshots/<commit>,refs}), the same layout Python's
// huggingface_hub uses, so both share one copy. Only what the engine needs is fetched: configs,
// tokenizer and the root safetensors shards (not original/ or metal/). Interrupted downloads resume
// from blobs/<etag>.incomplete via HTTP range requests.
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, symlink, copyFile, truncate, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { downloadFile, getHFHubCachePath, listFiles, modelInfo, type ListFileEntry } from '@huggingface/hub';

export interface DownloadProgress {
  /** Path inside the repository, e.g. "model-00000-of-00002.safetensors". */
  file: string;
  bytesDone: number;
  bytesTotal: number;
  fileIndex: number;
  fileCount: number;
}

export interface ResolveModelOptions {
  onProgress?: (p: DownloadProgress) => void;
  /** Branch, tag or commit; "main" by default. `org/name@rev` in the spec also sets it. */
  revision?: string;
  /** Hub cache root; default $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir?: string;
  /** Default $HF_TOKEN. */
  accessToken?: string;
  hubUrl?: string;
  /** Use only the local cache; default true when $HF_HUB_OFFLINE is 1/true. */
  offline?: boolean;
  /** Replaces global fetch (tests, proxies). */
  fetch?: typeof fetch;
}

/** The model could not be found locally nor downloaded. */
export class ModelResolveError extends Error {
  override name = 'ModelResolveError';
}

const REQUIRED_FILES = ['config.json'];
const OPTIONAL_FILES = [
  'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json',
  'chat_template.jinja', 'model.safetensors.index.json',
];

const HUB_ID = /^([A-Za-z0-9][\w.-]*)\/([\w.-]+)(?:@([\w./-]+))?$/;
const COMMIT = /^[0-9a-f]{40}$/;

export function hfHubCacheDir(): string {
  return getHFHubCachePath();
}

function howToUseLocal(spec: string): string {
  return `To use a model already on disk, pass its folder: --model /path/to/folder ` +
    `(a Hugging Face folder with config.json and *.safetensors, e.g. a download of ${spec}).`;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

async function sizeOf(p: string): Promise<number | null> {
  try {
    return (await stat(p)).size; // follows symlinks: a dangling pointer counts as absent
  } catch {
    return null;
  }
}

/** Weight files a snapshot folder needs: the index's shards, or model.safetensors. */
async function neededWeights(folder: string): Promise<string[] | null> {
  try {
    const idx = JSON.parse(await readFile(join(folder, 'model.safetensors.index.json'), 'utf8')) as { weight_map?: Record<string, string> };
    return [...new Set(Object.values(idx.weight_map ?? {}))];
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return ['model.safetensors'];
    return null;
  }
}

/** A complete cached snapshot of repo@revision, or null. */
export async function findCachedSnapshot(repo: string, revision = 'main', cacheDir = hfHubCacheDir()): Promise<string | null> {
  const storage = join(cacheDir, `models--${repo.split('/').join('--')}`);
  let commit = revision;
  if (!COMMIT.test(revision)) {
    try {
      commit = (await readFile(join(storage, 'refs', revision), 'utf8')).trim();
    } catch {
      return null;
    }
  }
  const folder = join(storage, 'snapshots', commit);
  if ((await sizeOf(join(folder, 'config.json'))) === null) return null;
  const weights = await neededWeights(folder);
  if (!weights || weights.length === 0) return null;
  for (const w of weights) if ((await sizeOf(join(folder, w))) === null) return null;
  return folder;
}

function etagOf(e: ListFileEntry): string {
  // Same choice as huggingface_hub: the LFS sha256 for large files, else the git blob id.
  const tag = e.lfs?.oid ?? e.xetHash ?? e.oid;
  if (!tag) throw new ModelResolveError(`hub entry ${e.path} has no oid to name its cache blob`);
  return tag;
}

/** Points snapshots/<commit>/<path> at blobs/<etag> with a relative symlink (copy where symlinks fail). */
async function linkPointer(blob: string, pointer: string): Promise<void> {
  await mkdir(dirname(pointer), { recursive: true });
  await rm(pointer, { force: true });
  try {
    await symlink(relative(dirname(pointer), blob), pointer);
  } catch {
    await copyFile(blob, pointer);
  }
}

interface HubParams {
  repo: string;
  revision: string;
  hubUrl?: string;
  fetch?: typeof fetch;
  accessToken?: string;
}

function creds(p: HubParams): { accessToken?: `hf_${string}` } {
  return p.accessToken ? { accessToken: p.accessToken as `hf_${string}` } : {};
}

async function downloadOne(
  p: HubParams & { commit: string; storage: string },
  entry: ListFileEntry,
  report: (done: number) => void,
): Promise<void> {
  const pointer = join(p.storage, 'snapshots', p.commit, entry.path);
  const blobPath = join(p.storage, 'blobs', etagOf(entry));
  if ((await sizeOf(pointer)) === entry.size) return report(entry.size);
  await mkdir(dirname(blobPath), { recursive: true });
  if ((await sizeOf(blobPath)) !== entry.size) {
    const incomplete = `${blobPath}.incomplete`;
    let have = (await sizeOf(incomplete)) ?? 0;
    if (have > entry.size) {
      await truncate(incomplete, 0);
      have = 0;
    }
    if (have < entry.size) {
      const blob = await downloadFile({
        repo: { type: 'model', name: p.repo }, path: entry.path, revision: p.commit,
        hubUrl: p.hubUrl, fetch: p.fetch, ...creds(p),
      });
      if (!blob) throw new ModelResolveError(`${p.repo}: ${entry.path} not found on the hub at ${p.commit}`);
      // Resume: fetch only the missing tail (an HTTP range request) and append.
      const part = have > 0 ? blob.slice(have) : blob;
      let done = have;
      report(done);
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          done += chunk.byteLength;
          report(done);
          cb(null, chunk);
        },
      });
      await pipeline(
        Readable.fromWeb(part.stream() as unknown as NodeReadableStream<Uint8Array>),
        counter,
        createWriteStream(incomplete, { flags: 'a' }) as Writable,
      );
    }
    const got = await sizeOf(incomplete);
    if (got !== entry.size) {
      throw new ModelResolveError(`${p.repo}: ${entry.path}: downloaded ${got} bytes, expected ${entry.size}; run again to resume`);
    }
    await rename(incomplete, blobPath);
  }
  await linkPointer(blobPath, pointer);
  report(entry.size);
}

async function downloadSnapshot(p: HubParams, cacheDir: string, onProgress?: (x: DownloadProgress) => void): Promise<string> {
  const storage = join(cacheDir, `models--${p.repo.split('/').join('--')}`);
  const info = await modelInfo({ name: p.repo, revision: p.revision, additionalFields: ['sha'], hubUrl: p.hubUrl, fetch: p.fetch, ...creds(p) });
  const commit = info.sha;
  if (p.revision !== commit) {
    await mkdir(join(storage, 'refs'), { recursive: true });
    await writeFile(join(storage, 'refs', p.revision), commit);
  }
  const entries = new Map<string, ListFileEntry>();
  for await (const e of listFiles({ repo: { type: 'model', name: p.repo }, revision: commit, hubUrl: p.hubUrl, fetch: p.fetch, ...creds(p) })) {
    // Root listing: plain names only, so nothing can be written outside the snapshot folder.
    if (e.type === 'file' && !e.path.includes('/') && !e.path.includes('\\') && e.path !== '..') entries.set(e.path, e);
  }
  for (const f of REQUIRED_FILES) {
    if (!entries.has(f)) throw new ModelResolveError(`${p.repo}@${commit}: no ${f} at the repository root; is it a gpt-oss model?`);
  }
  const ctx = { ...p, commit, storage };
  const small = [...REQUIRED_FILES, ...OPTIONAL_FILES].filter((f) => entries.has(f));
  let shards: string[];
  if (entries.has('model.safetensors.index.json')) {
    // The index names the shards; fetch it first.
    await downloadOne(ctx, entries.get('model.safetensors.index.json')!, () => {});
    const found = await neededWeights(join(storage, 'snapshots', commit));
    if (!found) throw new ModelResolveError(`${p.repo}@${commit}: model.safetensors.index.json is not valid JSON`);
    shards = found;
  } else {
    shards = entries.has('model.safetensors') ? ['model.safetensors'] : [];
  }
  if (shards.length === 0) throw new ModelResolveError(`${p.repo}@${commit}: no safetensors weights at the repository root`);
  const todo = [...small, ...shards].map((f) => {
    const e = entries.get(f);
    if (!e) throw new ModelResolveError(`${p.repo}@${commit}: ${f} is listed in the index but missing from the repository`);
    return e;
  });
  for (const [i, e] of todo.entries()) {
    await downloadOne(ctx, e, (done) =>
      onProgress?.({ file: e.path, bytesDone: done, bytesTotal: e.size, fileIndex: i, fileCount: todo.length }));
  }
  return join(storage, 'snapshots', commit);
}

/**
 * A local folder holding the model: `spec` itself when it is a folder, else the hub id
 * `org/name[@revision]` downloaded (or found) in the HF cache. Offline or when the hub cannot be
 * reached, a complete cached snapshot is used; without one this throws a ModelResolveError that
 * tells how to pass a local folder.
 */
export async function resolveModel(spec: string, opts: ResolveModelOptions = {}): Promise<string> {
  if (await isDir(spec)) return resolve(spec);
  const m = HUB_ID.exec(spec);
  if (!m || (await sizeOf(spec)) !== null) {
    throw new ModelResolveError(`${spec}: not a folder and not a Hugging Face model id like openai/gpt-oss-20b. ${howToUseLocal('the model')}`);
  }
  const repo = `${m[1]}/${m[2]}`;
  const revision = m[3] ?? opts.revision ?? 'main';
  const cacheDir = opts.cacheDir ?? hfHubCacheDir();
  const envOffline = /^(1|true|yes|on)$/i.test(process.env['HF_HUB_OFFLINE'] ?? '');
  const offline = opts.offline ?? envOffline;
  if (offline) {
    const cached = await findCachedSnapshot(repo, revision, cacheDir);
    if (cached) return cached;
    throw new ModelResolveError(`${repo}: offline mode and no complete copy in the cache ${cacheDir}. ${howToUseLocal(repo)}`);
  }
  try {
    return await downloadSnapshot(
      { repo, revision, hubUrl: opts.hubUrl, fetch: opts.fetch, accessToken: opts.accessToken ?? process.env['HF_TOKEN'] },
      cacheDir, opts.onProgress,
    );
  } catch (e) {
    const cached = await findCachedSnapshot(repo, revision, cacheDir);
    if (cached) return cached; // hub unreachable but a complete copy is here
    const why = e instanceof Error ? `${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ''}` : String(e);
    throw new ModelResolveError(`${repo}: could not download from the Hugging Face hub: ${why}. ${howToUseLocal(repo)}`, { cause: e });
  }
}

function human(n: number): string {
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${u[i]}`;
}

/**
 * An onProgress callback that draws one bar per file on stderr: redrawn in place (≤ 10/s) on a
 * terminal, one line per 10 % otherwise (logs, CI).
 */
export function stderrProgressBar(
  out: { isTTY?: boolean; write(s: string): unknown } = process.stderr,
  width = 30,
): (p: DownloadProgress) => void {
  let lastDraw = 0;
  let lastFile = '';
  let lastDecile = -1;
  let finishedFile = '';
  return (p) => {
    const frac = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 1;
    const finished = p.bytesDone >= p.bytesTotal;
    if (finished && finishedFile === p.file) return; // already drawn complete
    if (finished) finishedFile = p.file;
    if (p.file !== lastFile) {
      lastFile = p.file;
      lastDecile = -1;
      lastDraw = 0;
    }
    const filled = Math.round(frac * width);
    const line = `[${'='.repeat(filled)}${' '.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ` +
      `(${p.fileIndex + 1}/${p.fileCount}) ${p.file} ${human(p.bytesDone)}/${human(p.bytesTotal)}`;
    if (out.isTTY) {
      const now = Date.now();
      if (!finished && now - lastDraw < 100) return;
      lastDraw = now;
      out.write(`\r${line}\x1b[K${finished ? '\n' : ''}`);
    } else {
      const decile = Math.floor(frac * 10);
      if (decile === lastDecile) return;
      lastDecile = decile;
      out.write(`${line}\n`);
    }
  };
}
