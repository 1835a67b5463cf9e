/** The bcmr command line itself: --version and help exit 0 with their text on stdout. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { BCMR_BIN } from '../helpers/serve.js';

test('--version prints the package version', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  const out = execFileSync(process.execPath, [BCMR_BIN, '--version'], { encoding: 'utf8' });
  assert.equal(out.trim(), pkg.version);
});

test('copy --help lists --direct', () => {
  const out = execFileSync(process.execPath, [BCMR_BIN, 'copy', '--help'], { encoding: 'utf8' });
  assert.match(out, /--direct <mode>/);
  assert.match(out, /-P, --parallel <n>/);
});
