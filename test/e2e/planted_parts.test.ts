/**
 * A part file another user planted is never adopted. In a directory others can write, "nobody"
 * pre-creates `.big.bin.bcmr-part` (mode 0666) holding the right first 4 MiB, so a -C prefix
 * check would pass: a -C upload, a striped (-P 4) upload and a -C download must each leave a
 * destination that is ours (the session's uid), writable by no one else, and whole.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { cannotRun } from '../helpers/cannot_run.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, leftovers } from './run.js';

const MiB = 1 << 20;
const NOBODY = 65534;
const root = process.getuid?.() === 0;

describe('part files planted by another user', {
  skip: cannotRun(root ? false : 'planted part files NOT tested: planting as another user needs root'),
}, () => {
  let sshd: SshServer;
  let dir: string;
  let cleanup: () => Promise<void>;
  let data: Buffer;
  before(async () => {
    sshd = await startSshd();
    ({ dir, cleanup } = await tempDir('bcmr-e2e-planted-'));
    data = randomBytes(72 * MiB); // over the 64 MiB striping threshold
    fs.writeFileSync(path.join(dir, 'big.bin'), data);
  });
  after(async () => {
    await sshd?.stop();
    await cleanup?.();
  });

  /** A world-writable directory with the planted part file for `name` in it. */
  const plant = (sub: string, name: string): string => {
    const shared = path.join(dir, sub);
    fs.mkdirSync(shared, { recursive: true });
    fs.chmodSync(shared, 0o777);
    const part = path.join(shared, `.${name}.bcmr-part`);
    fs.writeFileSync(part, data.subarray(0, 4 * MiB));
    fs.chmodSync(part, 0o666);
    fs.chownSync(part, NOBODY, NOBODY);
    return shared;
  };
  const assertOurs = (file: string) => {
    const st = fs.statSync(file);
    assert.equal(st.uid, process.getuid?.(), `${file} is owned by uid ${st.uid}`);
    assert.equal(st.mode & 0o022, 0, `${file} has mode ${(st.mode & 0o777).toString(8)}`);
    assert.ok(fs.readFileSync(file).equals(data), `${file} differs from the source`);
  };
  const run = (args: string[]) => bcmr(['copy', '--rsh', sshd.rsh, ...args], { cwd: dir });

  test('-C upload through the server', async () => {
    const shared = plant('up-c', 'big.bin');
    const r = await run(['-C', '-P', '1', 'big.bin', `bcmr-test:${shared}/big.bin`]);
    assert.equal(r.code, 0, r.stderr);
    assertOurs(path.join(shared, 'big.bin'));
    assert.deepEqual(leftovers(shared), []);
  });

  test('striped upload (-P 4) through the server', async () => {
    const shared = plant('up-p4', 'big.bin');
    const r = await run(['-P', '4', 'big.bin', `bcmr-test:${shared}/big.bin`]);
    assert.equal(r.code, 0, r.stderr);
    assertOurs(path.join(shared, 'big.bin'));
    assert.deepEqual(leftovers(shared), []);
  });

  test('-C download, through the server and through the plain-ssh fallback', async () => {
    for (const host of ['bcmr-test', 'bcmr-nonode']) {
      const shared = plant(`down-${host}`, 'big.bin');
      const r = await run(['-C', `${host}:${dir}/big.bin`, `${shared}/big.bin`]);
      assert.equal(r.code, 0, `${host}: ${r.stderr}`);
      assertOurs(path.join(shared, 'big.bin'));
      assert.deepEqual(leftovers(shared), []);
    }
  });
});
