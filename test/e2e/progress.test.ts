/**
 * The progress display through the real sshd: files are counted as they finish (a long stream
 * of small files shows intermediate counts, which needs the server to answer while requests
 * keep coming), -P N draws a lane per connection, plain mode prints whole lines, and nothing
 * is drawn on a non-terminal unless asked.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr } from './run.js';

let sshd: SshServer;
let dir: string;
let cleanup: () => Promise<void>;
const run = (args: string[]) => bcmr([...args, '--rsh', sshd.rsh], { cwd: dir });
const ESC = '\u001b';
const CLEAR_LINE = new RegExp(`${ESC}\\[2K|\n`);
const ESCAPE = new RegExp(`${ESC}\\[[0-9;]*[A-Za-z]|\r`, 'g');
/** The lines of every frame drawn, escape sequences removed. */
const frames = (stderr: string) =>
  stderr
    .split(CLEAR_LINE)
    .map((l) => l.replace(ESCAPE, ''))
    .filter((l) => l.trim() !== '');

before(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = await tempDir('bcmr-e2e-progress-'));
  fs.mkdirSync(path.join(dir, 'many'));
  for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(dir, 'many', `f${i}`), randomBytes(100_000));
  fs.writeFileSync(path.join(dir, 'big.bin'), randomBytes(48 << 20));
});

after(async () => {
  await sshd?.stop();
  await cleanup?.();
});

test('files are counted as they finish, not all at the end', async () => {
  const r = await run([
    'copy',
    '-r',
    '--progress',
    'inline',
    '--bwlimit',
    '15M',
    'many',
    'bcmr-test:many-up',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const counts = frames(r.stderr).flatMap((l) => {
    const m = / (\d+)\/300 files/.exec(l);
    return m ? [Number(m[1])] : [];
  });
  assert.ok(counts.length >= 5, `frames: ${counts.join(',')}`);
  assert.ok(
    counts.some((n) => n > 0 && n < 300),
    `no intermediate count among ${counts.join(',')}`,
  );
  assert.match(r.stderr, /█/, 'a drawn bar');
});

test('-P 3 draws a lane per connection', async () => {
  const r = await run([
    'copy',
    '-r',
    '-P',
    '3',
    '--progress',
    'inline',
    '--bwlimit',
    '15M',
    'many',
    'bcmr-test:many-p3',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const lines = frames(r.stderr);
  // A lane line per connection; bytes on more than one of them (the three share the files).
  const carried = new Set<number>();
  const shown = new Set<number>();
  for (const l of lines) {
    const m = /conn +(\d+) \S+ +[\d.]+ \S+\/s +([\d.]+) /.exec(l);
    if (!m) continue;
    shown.add(Number(m[1]));
    if (Number(m[2]) > 0) carried.add(Number(m[1]));
  }
  assert.deepEqual([...shown].sort(), [1, 2, 3]);
  assert.ok(carried.size >= 2, `lanes that carried bytes: ${[...carried].join(', ')}`);
});

test('plain mode prints whole lines; a non-terminal gets nothing by default', async () => {
  const plain = await run(['copy', '-f', '--progress', 'plain', 'big.bin', 'bcmr-test:plain.bin']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stderr, /^100% 48\.0 MiB \/ 48\.0 MiB .* 1\/1 files$/m);
  assert.ok(!plain.stderr.includes(ESC), 'no escape sequence in plain progress');
  const quiet = await run(['copy', '-f', 'big.bin', 'bcmr-test:auto.bin']);
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stderr, '');
});
