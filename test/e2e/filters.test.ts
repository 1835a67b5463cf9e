/**
 * The glob rules and --files-from through the real sshd: a download keeps only what the rules
 * take (listed by the server), an upload to the plain-ssh fallback only the listed paths
 * (NUL-separated), and sync --delete never deletes what a rule leaves out.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, snapshot } from './run.js';

let sshd: SshServer;
let dir: string;
let cleanup: () => Promise<void>;
const run = (args: string[]) => bcmr([...args, '--rsh', sshd.rsh], { cwd: dir });
const names = (root: string) =>
  snapshot(root).map((l) => (l.endsWith('/') ? l : l.slice(0, l.lastIndexOf(' '))));

before(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = await tempDir('bcmr-e2e-filters-'));
  for (const f of ['a/x.txt', 'a/b/y.txt', 'a/b/z.o', 'c.txt', 'd.log', 'e f/g h.txt'])
    fs.mkdirSync(path.dirname(path.join(dir, 'src', f)), { recursive: true });
  for (const f of ['a/x.txt', 'a/b/y.txt', 'a/b/z.o', 'c.txt', 'd.log', 'e f/g h.txt'])
    fs.writeFileSync(path.join(dir, 'src', f), f);
});

after(async () => {
  await sshd?.stop();
  await cleanup?.();
});

test('download with --include */ --include *.txt --exclude-glob *: only the .txt files', async () => {
  const r = await run([
    'copy',
    '-r',
    '--include',
    '*/',
    '--include',
    '*.txt',
    '--exclude-glob',
    '*',
    `bcmr-test:${path.join(dir, 'src')}`,
    'down',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(names(path.join(dir, 'down')), [
    'a/',
    'a/b/',
    'a/b/y.txt',
    'a/x.txt',
    'c.txt',
    'e f/',
    'e f/g h.txt',
  ]);
});

test('upload to the fallback with --files-from -0: only the listed paths', async () => {
  fs.writeFileSync(path.join(dir, 'list'), 'a/b/z.o\0e f\0');
  const r = await run([
    'copy',
    '-r',
    '--files-from',
    'list',
    '-0',
    'src',
    `bcmr-nonode:${path.join(dir, 'up')}`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(names(path.join(dir, 'up')), ['a/', 'a/b/', 'a/b/z.o', 'e f/', 'e f/g h.txt']);
});

test('sync --delete leaves what --exclude-glob names alone on both sides', async () => {
  const dst = path.join(dir, 'mirror');
  fs.mkdirSync(dst);
  fs.writeFileSync(path.join(dst, 'theirs.log'), 'kept');
  fs.writeFileSync(path.join(dst, 'stale.txt'), 'goes');
  const r = await run(['sync', '--delete', '--exclude-glob', '*.log', 'src', `bcmr-test:${dst}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(names(dst), [
    'a/',
    'a/b/',
    'a/b/y.txt',
    'a/b/z.o',
    'a/x.txt',
    'c.txt',
    'e f/',
    'e f/g h.txt',
    'theirs.log',
  ]);
});
