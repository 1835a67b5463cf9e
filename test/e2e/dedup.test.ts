/** Dedup through the real sshd: repeat uploads skip every block; a corrupt store is survived. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, jsonEvents } from './run.js';

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
