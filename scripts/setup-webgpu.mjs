#!/usr/bin/env node
// Makes sure Dawn finds a WebGPU adapter. On a GPU-less Debian/Ubuntu machine (CI, laptops without
// Vulkan) it installs Mesa's lavapipe software Vulkan driver; on Debian 12 that driver must come from
// bookworm-backports because bookworm's Mesa 22 is too old for Dawn.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

process.env.XDG_RUNTIME_DIR ??= '/tmp';

function probeAdapter() {
  // A child process: a failed Vulkan probe must not take this script down with it.
  const code = `
    const { create } = await import('webgpu');
    const gpu = create([]); globalThis.__gpu = gpu;
    const a = await gpu.requestAdapter();
    if (!a) process.exit(3);
    const d = await a.requestDevice();
    console.log(JSON.stringify({ vendor: a.info.vendor, device: a.info.device, description: a.info.description }));
    d.destroy(); process.exit(0);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    encoding: 'utf8',
    env: process.env,
    timeout: 120_000,
  });
  return { ok: r.status === 0, out: (r.stdout ?? '').trim(), err: (r.stderr ?? '').trim() };
}

function osRelease() {
  if (!existsSync('/etc/os-release')) return {};
  const out = {};
  for (const line of readFileSync('/etc/os-release', 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=("?)(.*)\2$/.exec(line);
    if (m) out[m[1]] = m[3];
  }
  return out;
}

const howTo = `No WebGPU adapter was found.
Install a Vulkan driver for your GPU, or Mesa's software driver (lavapipe) to run on the CPU:
  Debian 12:  echo 'deb http://deb.debian.org/debian bookworm-backports main' >/etc/apt/sources.list.d/backports.list
              apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1
  Debian 13 / Ubuntu 24.04+:  apt-get install -y mesa-vulkan-drivers libvulkan1
(run as root), then run this command again.`;

function run(cmd, args) {
  console.error(`setup: ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

let probe = probeAdapter();
if (probe.ok) {
  console.error(`setup: WebGPU adapter ok ${probe.out}`);
  process.exit(0);
}

const os = osRelease();
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const debianLike = /debian|ubuntu/.test(`${os.ID ?? ''} ${os.ID_LIKE ?? ''}`);
if (!isRoot || !debianLike) {
  console.error(howTo);
  if (probe.err) console.error(`\n(probe said: ${probe.err.split('\n').slice(-3).join(' | ')})`);
  process.exit(1);
}

if (os.ID === 'debian' && os.VERSION_CODENAME === 'bookworm') {
  const list = '/etc/apt/sources.list.d/backports.list';
  if (!existsSync(list) || !readFileSync(list, 'utf8').includes('bookworm-backports')) {
    writeFileSync(list, 'deb http://deb.debian.org/debian bookworm-backports main\n');
  }
  run('apt-get', ['update', '-qq']);
  run('apt-get', ['install', '-y', '-qq', '-t', 'bookworm-backports', 'mesa-vulkan-drivers', 'libvulkan1']);
} else {
  run('apt-get', ['update', '-qq']);
  run('apt-get', ['install', '-y', '-qq', 'mesa-vulkan-drivers', 'libvulkan1']);
}

probe = probeAdapter();
if (!probe.ok) {
  console.error(`setup: still no WebGPU adapter after installing lavapipe.\n${probe.err}\n\n${howTo}`);
  process.exit(1);
}
console.error(`setup: WebGPU adapter ok ${probe.out}`);
