// The chat page's vendored libraries (ui/vendor/) are the installed, pinned marked and DOMPurify,
// with their licences: scripts/vendor-ui.mjs --check compares them byte for byte.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../server/helpers.js';

describe('ui/vendor', () => {
  it('holds the pinned marked and DOMPurify builds and their licences', async () => {
    for (const f of ['marked.esm.js', 'marked.LICENSE.txt', 'purify.es.mjs', 'dompurify.LICENSE.txt', 'dompurify.LICENSE-MPL.txt']) {
      expect(existsSync(path.join(REPO_ROOT, 'ui', 'vendor', f)), f).toBe(true);
    }
    const { stderr } = await promisify(execFile)(process.execPath, [path.join(REPO_ROOT, 'scripts', 'vendor-ui.mjs'), '--check']);
    expect(stderr).toBe('');
  });

});
