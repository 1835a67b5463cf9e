/**
 * The real server behind a frame-level liar (harness/lying_server.ts), through the real sshd:
 * what the client does when a reply is not the truth.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BCMR_BIN, type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr } from './run.js';

const MiB = 1 << 20;
let sshd: SshServer;
let dir: string;
let cleanup: () => Promise<void>;
const liar = (mode: string) => [
  '--remote-path',
  `'${process.execPath}' '${path.join(path.dirname(BCMR_BIN), '../dist/test/harness/lying_server.js')}' ${mode}`,
];
const copy = (args: string[]) => bcmr(['copy', '--rsh', sshd.rsh, ...args], { cwd: dir });

before(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = await tempDir('bcmr-e2e-liar-'));
  fs.writeFileSync(path.join(dir, 'small.bin'), randomBytes(100_000));
});

after(async () => {
  await sshd?.stop();
  await cleanup?.();
});

describe('a server that lies', () => {
  test('-V catches a server whose Hash replies do not match what it stored, both ways', async () => {
    const honest = await copy([...liar('none'), '-V', 'small.bin', `bcmr-test:${dir}/honest.bin`]);
    assert.equal(honest.code, 0, `the liar passes everything through in mode none: ${honest.stderr}`);
    const up = await copy([...liar('hash-lies'), '-V', 'small.bin', `bcmr-test:${dir}/up.bin`]);
    assert.equal(up.code, 1, up.stderr);
    assert.match(up.stderr, /verify failed: stored copy hashes to/);
    // --fast: the download carries no hash, so -V asks the server for the source's.
    const down = await copy([...liar('hash-lies'), '-V', '--fast', `bcmr-test:${dir}/small.bin`, 'down.bin']);
    assert.equal(down.code, 1, down.stderr);
    assert.match(down.stderr, /verify failed/);
  });

  test("a striped upload whose part file's Stat fails (not missing) keeps that part file", async () => {
    const data = randomBytes(72 * MiB); // over the 64 MiB striping threshold
    fs.writeFileSync(path.join(dir, 'big.bin'), data);
    fs.mkdirSync(path.join(dir, 'striped'));
    // An earlier striped upload's part file, already whole: a rerun needs to send nothing.
    const part = path.join(dir, 'striped/.big.bin.bcmr-part');
    fs.writeFileSync(part, data);
    const r = await copy([
      ...liar('stat-fails:.bcmr-part'),
      '-P',
      '4',
      'big.bin',
      `bcmr-test:${dir}/striped/`,
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /injected: stat failed/);
    assert.ok(fs.readFileSync(part).equals(data), 'the part file was not truncated');
    assert.equal(fs.existsSync(path.join(dir, 'striped/big.bin')), false);
  });
});
