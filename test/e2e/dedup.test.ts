/** Dedup through the real sshd: repeat uploads skip every block; a corrupt store is survived. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { countingRelay } from '../helpers/counting_relay.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, jsonEvents, leftovers } from './run.js';

let sshd: SshServer;
let dir: string;
let cleanup: () => Promise<void>;
const MiB = 1 << 20;

before(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = await tempDir('bcmr-e2e-dedup-'));
  const fd = fs.openSync(path.join(dir, 'art.bin'), 'w');
  for (let i = 0; i < 16; i++) fs.writeSync(fd, randomBytes(4 * MiB));
  fs.closeSync(fd);
});

after(async () => {
  await sshd?.stop();
  await cleanup?.();
});

const upload = async (name: string) => {
  const r = await bcmr(['--json', 'copy', '-f', '--rsh', sshd.rsh, 'art.bin', `bcmr-test:${dir}/${name}`], {
    cwd: dir,
  });
  assert.equal(r.code, 0, r.stderr);
  const [file] = jsonEvents(r.stdout).filter((e) => e.event === 'file');
  assert.ok(fs.readFileSync(path.join(dir, name)).equals(fs.readFileSync(path.join(dir, 'art.bin'))));
  return file;
};

/** Each test starts from an empty server store: no test depends on another's uploads. */
const emptyStore = () => fs.rmSync(path.join(sshd.dir, 'cas'), { recursive: true, force: true });

test('a repeat 64 MiB upload sends no block the server already has', async () => {
  emptyStore();
  const first = await upload('one.bin');
  assert.equal(first.deduped, undefined);
  const second = await upload('two.bin');
  assert.equal(second.deduped, 64 * MiB);
  assert.equal(second.blake3, first.blake3);
});

test('a stale block in the server store is refused, and the file is resent whole and correct', async () => {
  emptyStore();
  const first = await upload('stale-one.bin');
  assert.equal(first.deduped, undefined);
  const cas = path.join(sshd.dir, 'cas');
  const refs = (fs.readdirSync(cas, { recursive: true }) as string[]).filter((p) => p.endsWith('.ref'));
  assert.equal(refs.length, 16, 'one reference per block of the first upload, no copies');
  // stale-one.bin holds those blocks; its block 3 changes in place.
  const fd = fs.openSync(path.join(dir, 'stale-one.bin'), 'r+');
  fs.writeSync(fd, Buffer.alloc(64, 0), 0, 64, 3 * 4 * MiB + 5);
  fs.closeSync(fd);
  const third = await upload('three.bin');
  // The first try was refused (rule 17.3); the retry sent every block.
  assert.equal(third.deduped, undefined);
});

test('an upload killed at about half, rerun without -C, sends only the blocks the server lacks', async () => {
  emptyStore();
  const SIZE = 96 * MiB;
  const src = path.join(dir, 'big.bin');
  const fd = fs.openSync(src, 'w');
  for (let i = 0; i < SIZE / (4 * MiB); i++) fs.writeSync(fd, randomBytes(4 * MiB));
  fs.closeSync(fd);
  const dest = path.join(dir, 'out');
  fs.mkdirSync(dest, { recursive: true });
  const argv = (alias: string) => ['--json', 'copy', '--rsh', sshd.rsh, src, `${alias}:${dest}/big.bin`];

  // First run: the relay holds the upload after ~52 MiB; once the server's temp file holds
  // 48 MiB the client is killed (-9), and the relay lets the rest of ssh's bytes and its EOF go.
  const first = await countingRelay(sshd.port, 52 * MiB);
  sshd.addAlias('bcmr-half', '127.0.0.1', first.port);
  let pid = 0;
  const run = bcmr(argv('bcmr-half'), { onSpawn: (p) => (pid = p) });
  const temp = () => fs.readdirSync(dest).filter((f) => f.includes('.bcmr-tmp-'));
  const deadline = Date.now() + 30_000;
  while (
    Date.now() < deadline &&
    !temp().some((f) => (fs.statSync(path.join(dest, f), { throwIfNoEntry: false })?.size ?? 0) >= 48 * MiB)
  ) {
    await new Promise((r) => setTimeout(r, 5));
  }
  process.kill(pid, 'SIGKILL');
  first.release();
  const killed = await run;
  assert.equal(killed.signal, 'SIGKILL');
  assert.equal(fs.existsSync(path.join(dest, 'big.bin')), false, 'nothing under the final name');
  // The server keeps what it received in its store, not in the destination directory.
  while (Date.now() < deadline && leftovers(dest).length > 0) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(leftovers(dest), []);
  await first.close();

  const second = await countingRelay(sshd.port);
  sshd.addAlias('bcmr-rerun', '127.0.0.1', second.port);
  const r = await bcmr(argv('bcmr-rerun'));
  await second.close();
  assert.equal(r.code, 0, r.stderr);
  assert.ok(fs.readFileSync(path.join(dest, 'big.bin')).equals(fs.readFileSync(src)), 'bit-identical');
  const [file] = jsonEvents(r.stdout).filter((e) => e.event === 'file');
  assert.ok(Number(file.deduped) >= 44 * MiB, `deduped ${file.deduped}`);
  assert.ok(second.up() <= 0.6 * SIZE, `the rerun put ${second.up()} bytes on the wire for ${SIZE}`);
});

test('a striped upload (-P 4) killed at about half, rerun without -C, sends only the blocks not there', async () => {
  const SIZE = 96 * MiB;
  const src = path.join(dir, 'striped.bin');
  const fd = fs.openSync(src, 'w');
  for (let i = 0; i < SIZE / (4 * MiB); i++) fs.writeSync(fd, randomBytes(4 * MiB));
  fs.closeSync(fd);
  const dest = path.join(dir, 'out-striped');
  fs.mkdirSync(dest, { recursive: true });
  const argv = (alias: string) => [
    '--json',
    'copy',
    '-P',
    '4',
    '--rsh',
    sshd.rsh,
    src,
    `${alias}:${dest}/striped.bin`,
  ];
  const part = path.join(dest, '.striped.bin.bcmr-part');

  // The ranges go out on four connections at once, each leaving a hole behind it: wait until
  // the (sparse) part file holds 44 MiB, then kill the client (-9).
  const first = await countingRelay(sshd.port, 52 * MiB);
  sshd.addAlias('bcmr-half-striped', '127.0.0.1', first.port);
  let pid = 0;
  const run = bcmr(argv('bcmr-half-striped'), { onSpawn: (p) => (pid = p) });
  const deadline = Date.now() + 30_000;
  const held = () => (fs.statSync(part, { throwIfNoEntry: false })?.blocks ?? 0) * 512;
  while (Date.now() < deadline && held() < 44 * MiB) await new Promise((r) => setTimeout(r, 5));
  process.kill(pid, 'SIGKILL');
  first.release();
  assert.equal((await run).signal, 'SIGKILL');
  await first.close();
  assert.equal(fs.existsSync(path.join(dest, 'striped.bin')), false, 'nothing under the final name');

  const second = await countingRelay(sshd.port);
  sshd.addAlias('bcmr-rerun-striped', '127.0.0.1', second.port);
  const r = await bcmr(argv('bcmr-rerun-striped'));
  await second.close();
  assert.equal(r.code, 0, r.stderr);
  assert.ok(fs.readFileSync(path.join(dest, 'striped.bin')).equals(fs.readFileSync(src)), 'bit-identical');
  assert.deepEqual(leftovers(dest), []);
  const [file] = jsonEvents(r.stdout).filter((e) => e.event === 'file');
  assert.ok(Number(file.resumedFrom) >= 40 * MiB, `kept ${file.resumedFrom}`);
  assert.ok(second.up() <= 0.6 * SIZE, `the rerun put ${second.up()} bytes on the wire for ${SIZE}`);
});
