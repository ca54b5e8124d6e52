#!/usr/bin/env node
// Dawn warns when XDG_RUNTIME_DIR is unset; give it a harmless default before it loads.
process.env.XDG_RUNTIME_DIR ??= '/tmp';
await import('../dist/cli.js');
