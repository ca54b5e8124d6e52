#!/usr/bin/env node
// Copies the chat page's two libraries, at the versions package-lock.json pins, into ui/vendor/
// with their licences: marked (Markdown) and DOMPurify (HTML sanitizer), as browser ES modules.
// The copies are committed, so the page needs no build step; run this after updating either
// package (test/ui/vendor.test.ts checks that the copies match the installed versions).
//
//   node scripts/vendor-ui.mjs [--check]

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = (name) => join(ROOT, 'node_modules', name);

/** Vendored file -> its source; scripts lose their sourceMappingURL (the maps are not shipped). */
export const VENDORED = {
  'marked.esm.js': join(pkg('marked'), 'lib', 'marked.esm.js'),
  'marked.LICENSE.txt': join(pkg('marked'), 'LICENSE'),
  'purify.es.mjs': join(pkg('dompurify'), 'dist', 'purify.es.mjs'),
  'dompurify.LICENSE.txt': join(pkg('dompurify'), 'LICENSE'),
  'dompurify.LICENSE-MPL.txt': join(pkg('dompurify'), 'LICENSE-MPL'),
};

export function vendoredText(file) {
  const text = readFileSync(VENDORED[file], 'utf8');
  return /\.m?js$/.test(file) ? text.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n') : text;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const file of Object.keys(VENDORED)) {
    const dest = join(ROOT, 'ui', 'vendor', file);
    const want = vendoredText(file);
    if (check) {
      let have = null;
      try {
        have = readFileSync(dest, 'utf8');
      } catch {}
      if (have !== want) {
        console.error(`ui/vendor/${file} differs from ${VENDORED[file]}`);
        stale++;
      }
    } else writeFileSync(dest, want);
  }
  process.exit(stale ? 1 : 0);
}
