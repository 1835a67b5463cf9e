/**
 * --to through the real sshd: one source to a bcmr host, a shell-only host and a refused one at
 * once; the refused one fails alone (its own summary, exit 1) and the others complete; events
 * carry `to`; move --to removes the sources only when every destination has its copy; sync
 * --to re-runs send nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, jsonEvents, snapshot } from './run.js';

let sshd: SshServer;
let dir: string;
let cleanup: () => Promise<void>;
const run = (args: string[]) => bcmr(['--json', ...args, '--rsh', sshd.rsh, '--retries', '0'], { cwd: dir });
const at = (...p: string[]) => path.join(dir, ...p);

function makeTree(root: string): void {
  fs.mkdirSync(path.join(root, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(root, 'a.bin'), randomBytes(3 << 20));
  fs.writeFileSync(path.join(root, 'sub/b.txt'), 'b');
}

before(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = await tempDir('bcmr-e2e-fanout-'));
  makeTree(at('src'));
});

after(async () => {
  await sshd?.stop();
  await cleanup?.();
});

test('one refused host fails alone; the others get the whole tree', async () => {
  const want = snapshot(at('src'));
  const r = await run([
    'copy',
    '-r',
    'src',
    '--to',
    `bcmr-test:${at('A')}`,
    '--to',
    `bcmr-nonode:${at('B')}`,
    '--to',
    'bcmr-refused:C',
  ]);
  assert.equal(r.code, 1, r.stderr);
  assert.deepEqual(snapshot(at('A')), want);
  assert.deepEqual(snapshot(at('B')), want);
  const events = jsonEvents(r.stdout);
  const summaries = new Map(events.filter((e) => e.event === 'summary').map((e) => [e.to, e]));
  assert.equal(summaries.get(`bcmr-test:${at('A')}`)?.exit, 0);
  assert.equal(summaries.get(`bcmr-nonode:${at('B')}`)?.files, 2);
  assert.match(String(summaries.get('bcmr-refused:C')?.error), /refused/i);
  const files = events.filter((e) => e.event === 'file');
  assert.equal(files.length, 4);
  assert.deepEqual([...new Set(files.map((e) => e.to))].sort(), [
    `bcmr-nonode:${at('B')}`,
    `bcmr-test:${at('A')}`,
  ]);
});

test('move --to keeps the sources when a destination fails, removes them when all succeed', async () => {
  makeTree(at('mv'));
  const want = snapshot(at('mv'));
  const failed = await run(['move', 'mv', '--to', `bcmr-test:${at('M1')}`, '--to', 'bcmr-refused:M2']);
  assert.equal(failed.code, 1);
  assert.deepEqual(snapshot(at('mv')), want, 'sources untouched');
  assert.match(failed.stderr, /sources kept/);
  const ok = await run([
    'move',
    '-f',
    'mv',
    '--to',
    `bcmr-test:${at('M4')}`,
    '--to',
    `bcmr-nonode:${at('M3')}`,
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(fs.existsSync(at('mv')), false);
  assert.deepEqual(snapshot(at('M4')), want);
  assert.deepEqual(snapshot(at('M3')), want);
});

test('sync --to: a re-run sends nothing to either host', async () => {
  const to = ['--to', `bcmr-test:${at('S1')}`, '--to', `bcmr-nonode:${at('S2')}`];
  assert.equal((await run(['sync', 'src', ...to])).code, 0);
  const again = await run(['sync', 'src', ...to]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(jsonEvents(again.stdout).filter((e) => e.event === 'file').length, 0);
  assert.deepEqual(snapshot(at('S2')), snapshot(at('src')));
});
