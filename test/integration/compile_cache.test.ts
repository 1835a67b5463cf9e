/**
 * V8's compile cache never lives where another user can write: by default Node puts it in the
 * shared temp dir and accepts a directory someone else made there, so a planted entry would run
 * as us. bcmr uses `$XDG_CACHE_HOME/bcmr/v8`, created 0700 and checked, or no cache at all.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BCMR_BIN } from '../harness/sshd.js';
import { cannotRun } from '../helpers/cannot_run.js';
import { tempDir } from '../helpers/serve.js';

const hasCompileCache = Number(process.versions.node.split('.')[0]) >= 22;

describe('the compile cache is private to the user', {
  skip: cannotRun(hasCompileCache ? false : 'Node < 22 has no compile cache: its privacy NOT tested'),
}, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ dir, cleanup } = await tempDir('bcmr-cc-'));
  });
  after(() => cleanup());

  const run = (tmp: string, cache: string) =>
    execFileSync(process.execPath, [BCMR_BIN, '--version'], {
      env: { ...process.env, TMPDIR: tmp, XDG_CACHE_HOME: cache, NODE_COMPILE_CACHE: undefined },
      encoding: 'utf8',
    });
  const entries = (d: string) =>
    fs.existsSync(d) ? (fs.readdirSync(d, { recursive: true }) as string[]) : [];

  test("another user's cache directory in the temp dir gets nothing; ours, 0700, gets the entries", () => {
    const tmp = path.join(dir, 'tmp');
    const planted = path.join(tmp, 'node-compile-cache');
    fs.mkdirSync(planted, { recursive: true, mode: 0o777 });
    fs.chmodSync(planted, 0o777);
    if (process.getuid?.() === 0) fs.chownSync(planted, 65534, 65534);
    const cache = path.join(dir, 'cache');
    fs.mkdirSync(cache, { mode: 0o700 });
    run(tmp, cache);
    assert.deepEqual(entries(planted), []);
    const ours = path.join(cache, 'bcmr', 'v8');
    assert.ok(entries(ours).length > 0, 'no compile cache entries in our own directory');
    assert.equal((fs.statSync(path.join(cache, 'bcmr')).mode & 0o777).toString(8), '700');
  });

  test('a cache directory others can write is not used', () => {
    const tmp = path.join(dir, 'tmp2');
    fs.mkdirSync(tmp);
    const cache = path.join(dir, 'cache2');
    fs.mkdirSync(path.join(cache, 'bcmr'), { recursive: true });
    fs.chmodSync(path.join(cache, 'bcmr'), 0o777);
    run(tmp, cache);
    assert.deepEqual(entries(path.join(cache, 'bcmr', 'v8')), []);
    assert.deepEqual(entries(tmp), []);
  });
});
