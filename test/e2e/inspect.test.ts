/**
 * `bcmr ls | stat | du | hash` of a remote through the real sshd (its server, and the plain-ssh
 * fallback), checked against what the same tree says here: sizes, times, totals and BLAKE3
 * (of whole files and of a range), --json events, and a missing path.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { blake3Hex } from '../../src/codec/hash.js';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, jsonEvents } from './run.js';

let sshd: SshServer;
let dir: string;
let cleanup: () => Promise<void>;
const run = (args: string[]) => bcmr(['--json', ...args, '--rsh', sshd.rsh], { cwd: dir });
const data = randomBytes(300_000);

before(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = await tempDir('bcmr-e2e-inspect-'));
  fs.mkdirSync(path.join(dir, 't/sub dir'), { recursive: true });
  fs.writeFileSync(path.join(dir, 't/big.bin'), data);
  fs.writeFileSync(path.join(dir, 't/sub dir/small'), 'small');
  fs.utimesSync(path.join(dir, 't/big.bin'), 1_700_000_000, 1_700_000_000);
});

after(async () => {
  await sshd?.stop();
  await cleanup?.();
});

for (const host of ['bcmr-test', 'bcmr-nonode'] as const) {
  test(`ls, stat, du and hash of ${host} agree with the tree`, async () => {
    const t = `${host}:${path.join(dir, 't')}`;
    const ls = await run(['ls', t]);
    assert.equal(ls.code, 0, ls.stderr);
    const entries = jsonEvents(ls.stdout).filter((e) => e.event === 'entry');
    assert.deepEqual(
      entries.map((e) => [e.path, e.size, e.isDir]),
      [
        ['big.bin', 300_000, false],
        ['sub dir', 0, true],
      ],
    );
    assert.equal(entries[0].mtime, 1_700_000_000);
    const lsR = await run(['ls', '-R', t]);
    assert.ok(jsonEvents(lsR.stdout).some((e) => e.path === 'sub dir/small'));

    const st = jsonEvents((await run(['stat', `${t}/big.bin`])).stdout).find((e) => e.event === 'stat');
    assert.deepEqual([st?.size, st?.mtime, st?.isDir], [300_000, 1_700_000_000, false]);

    const du = jsonEvents((await run(['du', t])).stdout).find((e) => e.event === 'du');
    assert.deepEqual([du?.bytes, du?.files, du?.dirs], [300_005, 2, 2]);

    const h = await run(['hash', '-r', t]);
    assert.equal(h.code, 0, h.stderr);
    assert.deepEqual(
      jsonEvents(h.stdout)
        .filter((e) => e.event === 'hash')
        .map((e) => [path.basename(String(e.path)), e.blake3]),
      [
        ['big.bin', blake3Hex(data)],
        ['small', blake3Hex(Buffer.from('small'))],
      ],
    );

    const missing = await run(['stat', `${t}/nope`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope: No such file or directory/);
  });
}

test('hash of a range through the server; on the fallback a clear error', async () => {
  const f = `${path.join(dir, 't/big.bin')}`;
  const r = await run(['hash', '--offset', '1000', '--limit', '5000', `bcmr-test:${f}`, f]);
  assert.equal(r.code, 0, r.stderr);
  const hashes = jsonEvents(r.stdout).filter((e) => e.event === 'hash');
  assert.deepEqual(
    hashes.map((e) => e.blake3),
    [blake3Hex(data.subarray(1000, 6000)), blake3Hex(data.subarray(1000, 6000))],
  );
  const fb = await run(['hash', '--offset', '1', `bcmr-nonode:${f}`]);
  assert.equal(fb.code, 1);
  assert.match(fb.stderr, /range needs bcmr/);
});
