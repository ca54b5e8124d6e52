#!/usr/bin/env node
// The programs the test suite drives besides Dawn: a real browser for the chat page and a real Redis
// for the shared Responses store. On a Debian/Ubuntu machine run as root (CI) it installs the
// missing ones from the distribution's packages; elsewhere it prints what to install and stops.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

/** Program the tests run → the Debian package that provides it. */
const TOOLS = [
  { program: 'chromium', package: 'chromium' },
  { program: 'redis-server', package: 'redis-server' },
];

const found = (program) => spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
const missing = TOOLS.filter((t) => !found(t.program));
if (!missing.length) process.exit(0);

const os = existsSync('/etc/os-release') ? readFileSync('/etc/os-release', 'utf8') : '';
const debianLike = /^(ID|ID_LIKE)=.*(debian|ubuntu)/m.test(os);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const pkgs = missing.map((t) => t.package);
if (!debianLike || !isRoot) {
  console.error(`setup: the tests need ${missing.map((t) => t.program).join(' and ')}; install ${pkgs.join(' ')} (as root: apt-get install -y ${pkgs.join(' ')}) and run again`);
  process.exit(1);
}
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
console.error(`setup: apt-get install -y ${pkgs.join(' ')}`);
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env });
for (const t of missing) if (!found(t.program)) throw new Error(`setup: ${t.package} installed but ${t.program} is still not on PATH`);
