/**
 * Issue 7 through the real sshd: the direct-TCP data plane (--direct=direct) and one large
 * file striped over -P 4 connections, over ssh and over direct, both ways; a flipped byte on
 * the direct socket, an unreachable direct port, a peer without AEAD, and a stripe connection
 * killed mid-transfer.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, type TestContext, test } from 'node:test';
import { startDelayProxy } from '../../bench/delay_proxy.js';
import { BCMR_BIN, type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, jsonEvents, leftovers } from './run.js';

let sshd: SshServer;
let dir: string;
let cleanup: () => Promise<void>;
const MiB = 1 << 20;
const BIG = 300 * MiB;
const FILES = { 'empty.bin': 0, 'one.bin': 1, 'big.bin': BIG } as const;

const sha = (p: string) => createHash('sha256').update(fs.readFileSync(p)).digest('hex');
const log = () => (fs.existsSync(sshd.serveLog) ? fs.readFileSync(sshd.serveLog, 'utf8') : '');
/** Distinct server processes that logged `what` (e.g. "PutChunked", "direct GetChunked"). */
const pidsWith = (what: string) =>
  new Set([...log().matchAll(new RegExp(`^(\\d+) ${what}$`, 'gm'))].map((m) => m[1]));
const mitm = (mode: string) =>
  `'${process.execPath}' '${path.join(path.dirname(BCMR_BIN), '../dist/test/harness/direct_mitm.js')}' ${mode}`;

before(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = await tempDir('bcmr-e2e-direct-'));
  fs.mkdirSync(path.join(dir, 'src'));
  for (const [name, size] of Object.entries(FILES)) {
    const fd = fs.openSync(path.join(dir, 'src', name), 'w');
    for (let done = 0; done < size; done += 4 * MiB)
      fs.writeSync(fd, randomBytes(Math.min(4 * MiB, size - done)));
    fs.closeSync(fd);
  }
});

after(async () => {
  await sshd?.stop();
  await cleanup?.();
});

const copy = (...args: string[]) => bcmr(['copy', '--rsh', sshd.rsh, ...args]);
const srcFiles = () => Object.keys(FILES).map((n) => path.join(dir, 'src', n));

function assertSameFiles(where: string): void {
  for (const n of Object.keys(FILES)) {
    assert.equal(sha(path.join(where, n)), sha(path.join(dir, 'src', n)), `${where}/${n}`);
  }
  assert.deepEqual(leftovers(where), []);
}

describe('round trips of 0 B, 1 B and 300 MiB', () => {
  const modes = [
    { name: 'over direct (-P 1)', args: ['--direct=direct'], direct: true, striped: false },
    { name: 'striped over ssh (-P 4)', args: ['-P', '4'], direct: false, striped: true },
    { name: 'striped over direct (-P 4)', args: ['-P', '4', '--direct=direct'], direct: true, striped: true },
  ];
  for (const [i, m] of modes.entries()) {
    test(m.name, async () => {
      const up = path.join(dir, `up${i}`);
      const down = path.join(dir, `down${i}`);
      fs.mkdirSync(up);
      fs.mkdirSync(down);
      fs.rmSync(sshd.serveLog, { force: true });
      const u = await copy(...m.args, ...srcFiles(), `bcmr-test:${up}/`);
      assert.equal(u.code, 0, u.stderr);
      assertSameFiles(up);
      const upLog = log();
      fs.rmSync(sshd.serveLog, { force: true });
      const d = await copy(...m.args, ...Object.keys(FILES).map((n) => `bcmr-test:${up}/${n}`), `${down}/`);
      assert.equal(d.code, 0, d.stderr);
      assertSameFiles(down);
      const downLog = log();
      const prefix = m.direct ? 'direct ' : '';
      if (m.direct) {
        // Every data request went over the direct sessions (AEAD in their caps), none over ssh.
        assert.match(upLog, /direct session caps=0x[4-7cdef][0-9a-f]/);
        assert.doesNotMatch(upLog, /^\d+ (Put|PutChunked)$/m);
        assert.doesNotMatch(downLog, /^\d+ (Get|GetChunked)$/m);
      }
      if (m.striped) {
        fs.writeFileSync(sshd.serveLog, upLog);
        assert.ok(pidsWith(`${prefix}PutChunked`).size >= 2, 'the big upload is spread over connections');
        assert.match(upLog, new RegExp(`^\\d+ ${prefix}Truncate$`, 'm'));
        fs.writeFileSync(sshd.serveLog, downLog);
        assert.ok(pidsWith(`${prefix}GetChunked`).size >= 2, 'the big download is spread over connections');
      } else {
        assert.match(upLog, new RegExp(`^\\d+ ${prefix}Put$`, 'm'));
        assert.match(downLog, new RegExp(`^\\d+ ${prefix}Get$`, 'm'));
      }
    });
  }
});

describe('the direct plane under attack or blocked', () => {
  test('one flipped byte on the direct socket fails the copy; nothing is published', async () => {
    const out = path.join(dir, 'flip');
    fs.mkdirSync(out);
    const r = await copy(
      '--direct=direct', '--remote-path', mitm('flip:200000'), `bcmr-test:${dir}/src/big.bin`, `${out}/`,
    ); // biome-ignore format: argv
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /integrity check failed: AEAD record failed authentication/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.deepEqual(fs.readdirSync(out), [], 'no final file and no temp file');
  });

  test('an unreachable direct port: one notice, then the ssh data path', async () => {
    const out = path.join(dir, 'unreach');
    fs.mkdirSync(out);
    const r = await copy(
      '--json', '-P', '2', '--direct=direct', '--remote-path', mitm('unreachable'), `bcmr-test:${dir}/src/big.bin`, `${out}/`,
    ); // biome-ignore format: argv
    assert.equal(r.code, 0, r.stderr);
    const start = jsonEvents(r.stdout).find((e) => e.event === 'start');
    assert.equal(start?.plane, 'ssh');
    assert.match(String(start?.directUnavailable), /cannot reach 127\.0\.0\.1:\d+/);
    const notices = r.stderr.split('\n').filter((l) => /direct data plane unavailable/.test(l));
    assert.equal(notices.length, 1, r.stderr);
    assert.match(notices[0], /cannot reach 127\.0\.0\.1:\d+/);
    assert.equal(sha(path.join(out, 'big.bin')), sha(path.join(dir, 'src', 'big.bin')));
  });

  test('an unreachable direct port with --no-fallback fails, copying nothing', async () => {
    const out = path.join(dir, 'unreach-strict');
    fs.mkdirSync(out);
    const r = await copy(
      '--direct=direct', '--no-fallback', '--remote-path', mitm('unreachable'), `${dir}/src/one.bin`, `bcmr-test:${out}/`,
    ); // biome-ignore format: argv
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /cannot reach 127\.0\.0\.1:\d+/);
    assert.deepEqual(fs.readdirSync(out), []);
  });

  test('a direct peer that leaves AEAD out is refused (exit 3), never used', async () => {
    const out = path.join(dir, 'downgrade');
    fs.mkdirSync(out);
    const r = await copy(
      '--direct=direct',
      '--remote-path',
      mitm('downgrade'),
      `${dir}/src/one.bin`,
      `bcmr-test:${out}/`,
    );
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /without AES-256-GCM/);
    assert.deepEqual(fs.readdirSync(out), []);
  });
});

describe('a stripe connection killed mid-transfer', () => {
  for (const [direction, direct] of [
    ['upload', false],
    ['download', true],
  ] as const) {
    test(`${direction}${direct ? ' over direct' : ''}: its ranges are retried; the final name appears only complete`, async () => {
      const out = path.join(dir, `kill-${direction}`);
      fs.mkdirSync(out);
      fs.rmSync(sshd.serveLog, { force: true });
      const final = path.join(out, 'big.bin');
      const what = `${direct ? 'direct ' : ''}${direction === 'upload' ? 'PutChunked' : 'GetChunked'}`;
      const run =
        direction === 'upload'
          ? copy('--json', '-P', '4', path.join(dir, 'src', 'big.bin'), `bcmr-test:${out}/`)
          : copy('--json', '-P', '4', '--direct=direct', `bcmr-test:${dir}/src/big.bin`, `${out}/`);
      let victim = 0;
      const deadline = Date.now() + 30_000;
      while (!victim && Date.now() < deadline) {
        assert.equal(fs.existsSync(final), false, 'never a partial file under the final name');
        const pids = [...pidsWith(what)];
        if (pids.length >= 2) victim = Number(pids[1]);
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.ok(victim, 'ranges went out on several connections');
      process.kill(victim, 'SIGKILL');
      const r = await run;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(sha(final), sha(path.join(dir, 'src', 'big.bin')));
      assert.deepEqual(leftovers(out), []);
      // A new connection took over: more sessions than the 4 we started with.
      assert.ok((log().match(/^\d+ session/gm) ?? []).length > 4, log());
      const [file] = jsonEvents(r.stdout).filter((e) => e.event === 'file');
      assert.equal(file.bytes, BIG);
      const start = jsonEvents(r.stdout).find((e) => e.event === 'start');
      assert.equal(start?.plane, direct ? 'direct' : 'ssh');
    });
  }
});

describe('-P auto and --direct auto', () => {
  const auto = ['--json', '-P', 'auto', '--direct', 'auto'];
  interface Start {
    connections: number;
    plane: string;
    path: { rttMs: number; why: string };
  }
  const startOf = (stdout: string) => jsonEvents(stdout).find((e) => e.event === 'start') as unknown as Start;

  /**
   * Uploads big.bin with -P auto --direct auto (and `extra`) into `out`, on loopback or, when
   * `far`, through a 60 ms delay proxy (ssh only: the direct plane's own port is not delayed);
   * checks the copy and returns the start event and stderr.
   */
  async function autoUpload(t: TestContext, out: string, far: boolean, extra: string[] = []) {
    let alias = 'bcmr-test';
    if (far) {
      const proxy = await startDelayProxy('127.0.0.1', sshd.port, 60);
      t.after(() => proxy.close());
      alias = `bcmr-far-${out}`;
      sshd.addAlias(alias, '127.0.0.1', proxy.port);
    }
    const dest = path.join(dir, out);
    fs.mkdirSync(dest);
    fs.rmSync(sshd.serveLog, { force: true });
    // BCMR_TRACE: the run's milestones on stderr (whether hashing ahead was stopped).
    const r = await bcmr(
      ['copy', '--rsh', sshd.rsh, ...auto, ...extra, `${dir}/src/big.bin`, `${alias}:${dest}/`],
      {
        env: { BCMR_TRACE: '1' },
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha(path.join(dest, 'big.bin')), sha(path.join(dir, 'src', 'big.bin')));
    return { start: startOf(r.stdout), stderr: r.stderr };
  }

  test('on loopback: one connection, on the direct plane for a big file', async (t) => {
    const { start } = await autoUpload(t, 'auto-lo', false);
    assert.equal(start.connections, 1, JSON.stringify(start));
    assert.equal(start.plane, 'direct');
    // Measured (the decision rests on it); its value on a loaded loopback is not the point.
    assert.ok(start.path.rttMs > 0 && start.path.rttMs < 1000, JSON.stringify(start.path));
    assert.match(start.path.why, /not window-bound.*less CPU per byte/);
    assert.match(log(), /^\d+ direct Put$/m);
    assert.doesNotMatch(log(), /PutChunked/);
  });

  test('on loopback, a small tree: one connection over ssh', async () => {
    const out = path.join(dir, 'auto-lo-small');
    fs.mkdirSync(out);
    const r = await copy(...auto, '-r', path.join(path.dirname(BCMR_BIN), '../src'), `bcmr-test:${out}/`);
    assert.equal(r.code, 0, r.stderr);
    const start = startOf(r.stdout);
    assert.equal(start.connections, 1, JSON.stringify(start));
    assert.equal(start.plane, 'ssh', JSON.stringify(start));
  });

  test('at 60 ms RTT: striped over several connections on the direct plane', async (t) => {
    const { start, stderr } = await autoUpload(t, 'auto-far', true);
    assert.ok(start.path.rttMs >= 55, JSON.stringify(start.path));
    assert.ok(start.connections >= 2, JSON.stringify(start));
    assert.equal(start.plane, 'direct', JSON.stringify(start));
    // The file is striped, so never deduped: its hashing ahead (begun while ssh connected, when
    // one connection was the guess) is stopped once the connections are chosen (an 80 MiB
    // file may be hashed already by then: the trace says which).
    assert.match(stderr, /prehash (stopped|unused \(done already\)): the file is striped/);
    // Striped (ranges, not one Put), and every connection opened took up the direct plane. How
    // many of them got ranges is work stealing's business: the first one, on unthrottled
    // loopback TCP, may take most before the others' handshakes cross the 60 ms path.
    assert.ok(pidsWith('direct PutChunked').size >= 1, 'the file went in ranges over the direct plane');
    const direct = new Set([...log().matchAll(/^(\d+) direct session/gm)].map((m) => m[1]));
    assert.equal(direct.size, start.connections, `a direct session per connection: ${log()}`);
  });

  test('at 60 ms RTT with the direct port out of reach: ssh, quietly, and --json says why', async (t) => {
    const { start, stderr } = await autoUpload(t, 'auto-closed', true, [
      '--remote-path',
      mitm('unreachable'),
    ]);
    assert.equal(start.plane, 'ssh', JSON.stringify(start));
    assert.match(start.path.why, /direct port out of reach/);
    assert.doesNotMatch(stderr, /direct data plane unavailable/);
  });
});
