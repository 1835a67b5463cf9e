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
  fs.rmSync(sshd.serveLog, { force: true });
  const third = await upload('three.bin');
  // The first try was offered through dedup and refused (rule 17.3); the retry, a second Put
  // on a new session, sent every block.
  assert.equal(third.deduped, undefined);
  const log = fs.readFileSync(sshd.serveLog, 'utf8');
  const puts = log.split('\n').filter((l) => / Put$/.test(l));
  assert.equal(puts.length, 2, `a refused dedup Put, then the whole file: ${log}`);
  assert.notEqual(puts[0].split(' ')[0], puts[1].split(' ')[0], 'the retry ran on a new session');
});

const SIZE = 96 * MiB;

/**
 * Uploads a fresh 96 MiB random file `name` (with `extra` options) through a counting relay
 * that holds the upload after 52 MiB; once `holds(dest)` says the server has about half,
 * kills the client (-9) and lets ssh's remaining bytes and its EOF through. Then reruns the
 * same command, unchanged, through a new relay: its result and the bytes it put on the wire.
 */
async function killedThenRerun(name: string, extra: string[], holds: (dest: string) => boolean) {
  const src = path.join(dir, name);
  const fd = fs.openSync(src, 'w');
  for (let i = 0; i < SIZE / (4 * MiB); i++) fs.writeSync(fd, randomBytes(4 * MiB));
  fs.closeSync(fd);
  const dest = path.join(dir, `out-${name}`);
  fs.mkdirSync(dest, { recursive: true });
  const argv = (alias: string) => [
    '--json',
    'copy',
    ...extra,
    '--rsh',
    sshd.rsh,
    src,
    `${alias}:${dest}/${name}`,
  ];

  const first = await countingRelay(sshd.port, 52 * MiB);
  sshd.addAlias(`bcmr-half-${name}`, '127.0.0.1', first.port);
  let pid = 0;
  const run = bcmr(argv(`bcmr-half-${name}`), { onSpawn: (p) => (pid = p) });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !holds(dest)) await new Promise((r) => setTimeout(r, 5));
  process.kill(pid, 'SIGKILL');
  first.release();
  assert.equal((await run).signal, 'SIGKILL');
  await first.close();
  assert.equal(fs.existsSync(path.join(dest, name)), false, 'nothing under the final name');
  // The server has seen its stream end once its temp file is gone (kept in its store, or not).
  const temps = () => fs.readdirSync(dest).filter((f) => f.includes('.bcmr-tmp-'));
  while (Date.now() < deadline && temps().length > 0) await new Promise((r) => setTimeout(r, 5));

  const second = await countingRelay(sshd.port);
  sshd.addAlias(`bcmr-rerun-${name}`, '127.0.0.1', second.port);
  const r = await bcmr(argv(`bcmr-rerun-${name}`));
  await second.close();
  assert.equal(r.code, 0, r.stderr);
  assert.ok(fs.readFileSync(path.join(dest, name)).equals(fs.readFileSync(src)), 'bit-identical');
  assert.deepEqual(leftovers(dest), []);
  const [file] = jsonEvents(r.stdout).filter((e) => e.event === 'file');
  return { file, wire: second.up() };
}

/** Bytes allocated to `file` (a sparse part file holds less than its size). */
const allocated = (file: string) => (fs.statSync(file, { throwIfNoEntry: false })?.blocks ?? 0) * 512;

test('an upload killed at about half, rerun without -C, sends only the blocks the server lacks', async () => {
  emptyStore();
  // The server's temp file holds 48 MiB: the kill. Afterwards the server keeps what it
  // received in its store, not in the destination directory (checked by the helper).
  const temp48 = (dest: string) =>
    fs.readdirSync(dest).some((f) => f.includes('.bcmr-tmp-') && allocated(path.join(dest, f)) >= 48 * MiB);
  const { file, wire } = await killedThenRerun('whole.bin', [], temp48);
  assert.ok(Number(file.deduped) >= 44 * MiB, `deduped ${file.deduped}`);
  assert.ok(wire <= 0.6 * SIZE, `the rerun put ${wire} bytes on the wire for ${SIZE}`);
});

test('a striped upload (-P 4) killed at about half, rerun without -C, sends only the blocks not there', async () => {
  // The ranges go out on four connections at once, each leaving a hole behind it: the kill
  // comes once the (sparse) part file holds 44 MiB.
  const part44 = (dest: string) => allocated(path.join(dest, '.striped.bin.bcmr-part')) >= 44 * MiB;
  const { file, wire } = await killedThenRerun('striped.bin', ['-P', '4'], part44);
  assert.ok(Number(file.resumedFrom) >= 40 * MiB, `kept ${file.resumedFrom}`);
  assert.ok(wire <= 0.6 * SIZE, `the rerun put ${wire} bytes on the wire for ${SIZE}`);
});
