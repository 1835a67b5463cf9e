/** The bcmr command line itself: --version and help exit 0 with their text on stdout. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { BCMR_BIN } from '../helpers/serve.js';

test('--version prints the package version and which BLAKE3 and codecs run', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  const out = execFileSync(process.execPath, [BCMR_BIN, '--version'], { encoding: 'utf8' }).split('\n');
  assert.equal(out[0], pkg.version);
  assert.match(out[1], /^blake3: native \S+$/);
  assert.match(out[2], /^codecs: zstd node:zlib, lz4 native$/);
  // BCMR_PORTABLE=1: no native code, BLAKE3 from WebAssembly, LZ4 left out.
  const portable = execFileSync(process.execPath, [BCMR_BIN, '--version'], {
    encoding: 'utf8',
    env: { ...process.env, BCMR_PORTABLE: '1' },
  }).split('\n');
  assert.equal(portable[1], 'blake3: portable wasm');
  assert.match(portable[2], /lz4 missing/);
});

test('copy --help lists --direct', () => {
  const out = execFileSync(process.execPath, [BCMR_BIN, 'copy', '--help'], { encoding: 'utf8' });
  assert.match(out, /--direct <mode>/);
  assert.match(out, /-P, --parallel <n>/);
});

test('bcmr --help lists every command', () => {
  const out = execFileSync(process.execPath, [BCMR_BIN, '--help'], { encoding: 'utf8' });
  for (const c of [
    'copy|cp',
    'move|mv',
    'sync',
    'check',
    'remove|rm',
    'ls',
    'stat',
    'du',
    'hash',
    'status',
    'completions',
    'doctor',
    'deploy',
    'serve',
  ])
    assert.match(out, new RegExp(`^  ${c.replace('|', '\\|')} `, 'm'), c);
  assert.doesNotMatch(out, /__complete/, 'the hidden command stays hidden');
});
