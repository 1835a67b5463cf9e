/**
 * `bcmr copy hostA:src hostB:dst`: relayed through the client (as scp -3), through the real
 * sshd under two host aliases, with bcmr on both hosts and with the plain-ssh fallback on one.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { blake3Hex } from '../../src/codec/hash.js';
import { BCMR_BIN, type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, jsonEvents, leftovers, makeOddTree, snapshot } from './run.js';

let sshd: SshServer;
let dir: string;
let cleanup: () => Promise<void>;
const copy = (args: string[]) => bcmr(['copy', '--rsh', sshd.rsh, ...args], { cwd: dir });
const hashOf = (p: string) => blake3Hex(fs.readFileSync(p));

before(async () => {
  sshd = await startSshd();
  // A second name for the same server: two "hosts" for the relay.
  sshd.addAlias('bcmr-other', '127.0.0.1', sshd.port);
  ({ dir, cleanup } = await tempDir('bcmr-e2e-r2r-'));
  makeOddTree(path.join(dir, 'src/tree'));
  fs.writeFileSync(path.join(dir, 'src/tree/-leading dash.txt'), 'dash');
  const big = fs.openSync(path.join(dir, 'src/big.bin'), 'w');
  for (let i = 0; i < 5; i++) fs.writeSync(big, randomBytes(16 << 20));
  fs.closeSync(big);
});

after(async () => {
  await sshd?.stop();
  await cleanup?.();
});

describe('remote -> remote', () => {
  test('bcmr on both hosts: a tree with odd names, relayed and verified; --json says so', async () => {
    fs.mkdirSync(path.join(dir, 'dst1'));
    const r = await copy(['--json', '-r', `bcmr-test:${dir}/src/tree`, `bcmr-other:${dir}/dst1/`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(snapshot(path.join(dir, 'dst1/tree')), snapshot(path.join(dir, 'src/tree')));
    const events = jsonEvents(r.stdout);
    assert.equal(events[0].op, 'relay');
    assert.equal(events[0].relay, true);
    assert.equal(events[0].via, 'bcmr');
    assert.equal(events[0].sourceVia, 'bcmr');
    for (const f of events.filter((e) => e.event === 'file')) {
      assert.equal(f.outcome, 'ok');
      assert.equal(f.blake3, hashOf(path.resolve(dir, String(f.path))));
    }
    assert.deepEqual(leftovers(dir), []);
  });

  test('--fast (no hash on the download leg): a source serving other bytes of the same size is caught', async () => {
    // The liar flips a byte of every Data frame the server sends; its Hash replies stay honest.
    // The old relay skipped its end-to-end check when the download leg had no hash.
    const liar = `'${process.execPath}' '${path.join(path.dirname(BCMR_BIN), '../dist/test/harness/lying_server.js')}' get-flips`;
    fs.mkdirSync(path.join(dir, 'dst-fast'));
    const r = await copy([
      '--fast', '--compress', 'none', '--remote-path', liar,
      `bcmr-test:${dir}/src/tree/plain.txt`, `bcmr-other:${dir}/dst-fast/`,
    ]); // biome-ignore format: argv
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /relay: source hashes to [0-9a-f]{64}, destination stored [0-9a-f]{64}/);
    const honest = await copy([
      '--fast', `bcmr-test:${dir}/src/tree/plain.txt`, `bcmr-other:${dir}/dst-fast/honest.txt`,
    ]); // biome-ignore format: argv
    assert.equal(honest.code, 0, honest.stderr);
    assert.equal(hashOf(path.join(dir, 'dst-fast/honest.txt')), hashOf(path.join(dir, 'src/tree/plain.txt')));
  });

  for (const [how, signals] of [
    ['a second Ctrl-C', ['SIGINT', 'SIGINT']],
    ['SIGHUP', ['SIGHUP']],
  ] as const) {
    test(`${how} mid-relay leaves no spool directory behind`, async () => {
      // The spool used to be removed only by unwinding: a second Ctrl-C exits at once, and
      // SIGHUP was not handled at all.
      const tmp = fs.mkdtempSync(path.join(dir, 'tmp-'));
      const spools = () => fs.readdirSync(tmp).filter((n) => n.startsWith('bcmr-relay-'));
      fs.mkdirSync(path.join(dir, `dst-${signals.length}`));
      let pid = 0;
      const run = bcmr(
        [
          'copy',
          '--rsh',
          sshd.rsh,
          `bcmr-test:${dir}/src/big.bin`,
          `bcmr-other:${dir}/dst-${signals.length}/`,
        ],
        { cwd: dir, env: { TMPDIR: tmp }, onSpawn: (p) => (pid = p) },
      );
      const deadline = Date.now() + 20_000;
      const spooling = () => spools().some((d) => fs.readdirSync(path.join(tmp, d)).length > 0);
      while (!spooling() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.ok(spooling(), 'the relay started spooling');
      for (const sig of signals) {
        process.kill(pid, sig);
        // Two signals of a kind sent at once arrive as one: let the first be taken.
        await new Promise((r) => setTimeout(r, 2));
      }
      const r = await run;
      assert.equal(r.code, 130, r.stderr);
      assert.deepEqual(spools(), []);
    });
  }

  test('the fallback on the destination host, then on the source host', async () => {
    // `--remote-path bcmr`: exactly that, no zero-install bundle, so bcmr-bare falls back.
    fs.mkdirSync(path.join(dir, 'dst2'));
    const down = await copy([
      '--remote-path',
      'bcmr',
      '-r',
      `bcmr-test:${dir}/src/tree`,
      `bcmr-bare:${dir}/dst2/`,
    ]);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stderr, /plain ssh/);
    assert.deepEqual(snapshot(path.join(dir, 'dst2/tree')), snapshot(path.join(dir, 'src/tree')));
    fs.mkdirSync(path.join(dir, 'dst3'));
    const up = await copy([
      '--remote-path',
      'bcmr',
      '--json',
      '-r',
      `bcmr-bare:${dir}/dst2/tree`,
      `bcmr-test:${dir}/dst3/`,
    ]);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(jsonEvents(up.stdout)[0].sourceVia, 'ssh');
    assert.deepEqual(snapshot(path.join(dir, 'dst3/tree')), snapshot(path.join(dir, 'src/tree')));
  });

  test('-P 4: an 80 MiB file striped on both legs, and -p keeps modes and times', async () => {
    fs.chmodSync(path.join(dir, 'src/big.bin'), 0o640);
    fs.utimesSync(path.join(dir, 'src/big.bin'), 1_600_000_000, 1_600_000_000);
    const r = await copy([
      '-P',
      '4',
      '-p',
      `bcmr-test:${dir}/src/big.bin`,
      `bcmr-other:${dir}/big-relayed.bin`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(hashOf(path.join(dir, 'big-relayed.bin')), hashOf(path.join(dir, 'src/big.bin')));
    const st = fs.statSync(path.join(dir, 'big-relayed.bin'));
    assert.equal(st.mode & 0o777, 0o640);
    assert.equal(Math.round(st.mtimeMs / 1000), 1_600_000_000);
    const log = fs.readFileSync(sshd.serveLog, 'utf8');
    assert.match(log, /GetChunked/);
    assert.match(log, /PutChunked/);
  });

  test('same host, overlapping: a file onto itself and a tree into itself stay correct', async () => {
    const f = path.join(dir, 'self.bin');
    fs.writeFileSync(f, randomBytes(1 << 20));
    const before = hashOf(f);
    const r = await copy(['-f', `bcmr-test:${f}`, `bcmr-other:${f}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(hashOf(f), before);
    fs.cpSync(path.join(dir, 'src/tree'), path.join(dir, 'ov'), { recursive: true });
    const into = await copy(['-r', `bcmr-test:${dir}/ov`, `bcmr-test:${dir}/ov/nested/`]);
    assert.equal(into.code, 0, into.stderr);
    // The listing was taken before copying: one copy of the tree inside it, not a recursion.
    assert.deepEqual(snapshot(path.join(dir, 'ov/nested/ov')), snapshot(path.join(dir, 'src/tree')));
    assert.equal(fs.existsSync(path.join(dir, 'ov/nested/ov/nested/ov')), false);
    assert.deepEqual(leftovers(dir), []);
  });

  test('a missing source on the first host: one error, exit 1, nothing on the second', async () => {
    const r = await copy([`bcmr-test:${dir}/no-such-file`, `bcmr-other:${dir}/never.txt`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /No such file/);
    assert.equal(fs.existsSync(path.join(dir, 'never.txt')), false);
  });
});
