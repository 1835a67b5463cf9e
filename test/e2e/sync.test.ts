/**
 * `bcmr sync` and `bcmr check` through the real sshd: a re-run moves only what changed, both
 * ways and on the plain-ssh fallback; --delete removes only after a clean transfer, never an
 * excluded path, and not past --max-delete; -n itemises; check's exit codes and its hashing
 * on the server.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, jsonEvents, snapshot } from './run.js';

let sshd: SshServer;
let dir: string;
let cleanup: () => Promise<void>;
const run = (args: string[]) => bcmr(['--json', ...args, '--rsh', sshd.rsh], { cwd: dir });
const sent = (stdout: string) =>
  jsonEvents(stdout)
    .filter((e) => e.event === 'file' && e.outcome === 'ok')
    .map((e) => path.basename(String(e.path)))
    .sort();

before(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = await tempDir('bcmr-e2e-sync-'));
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'sub/deep'), { recursive: true });
  for (let i = 0; i < 30; i++)
    fs.writeFileSync(path.join(src, i % 3 ? 'sub' : 'sub/deep', `f${i}`), randomBytes(3000 + i));
  fs.writeFileSync(path.join(src, 'top.txt'), 'top');
});

after(async () => {
  await sshd?.stop();
  await cleanup?.();
});

for (const [host, label] of [
  ['bcmr-test', 'bcmr on the remote'],
  ['bcmr-nonode', 'the plain-ssh fallback'],
] as const) {
  describe(`sync up, ${label}`, () => {
    const dst = () => path.join(dir, `up-${host}`);
    // A source of its own: no test depends on another's changes.
    const src = `src-${host}`;
    before(() =>
      fs.cpSync(path.join(dir, 'src'), path.join(dir, src), { recursive: true, preserveTimestamps: true }),
    );
    test('the first run sends everything; a re-run sends nothing', async () => {
      const first = await run(['sync', src, `${host}:${dst()}/nested/copy`]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(sent(first.stdout).length, 31);
      assert.deepEqual(snapshot(path.join(dst(), 'nested/copy')), snapshot(path.join(dir, src)));
      fs.rmSync(sshd.serveLog, { force: true });
      const again = await run(['sync', src, `${host}:${dst()}/nested/copy`]);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(sent(again.stdout), [], 'nothing moves on an unchanged tree');
      // The quick check reads no file: the server is asked for no hash.
      if (host === 'bcmr-test') assert.doesNotMatch(fs.readFileSync(sshd.serveLog, 'utf8'), / Hash$/m);
    });

    test('a changed file (same size, new mtime) and a new one move; -n itemises first', async () => {
      const f = path.join(dir, src, 'sub/f1');
      fs.writeFileSync(f, randomBytes(fs.statSync(f).size));
      fs.utimesSync(f, Date.now() / 1000 + 5, Date.now() / 1000 + 5);
      fs.writeFileSync(path.join(dir, src, 'new.txt'), 'new');
      const dry = await bcmr(['sync', '-n', src, `${host}:${dst()}/nested/copy`, '--rsh', sshd.rsh], {
        cwd: dir,
      });
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /^~ sub\/f1 \(3001 B\)$/m);
      assert.match(dry.stdout, /^\+ new\.txt \(3 B\)$/m);
      const r = await run(['sync', src, `${host}:${dst()}/nested/copy`]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(sent(r.stdout), ['f1', 'new.txt']);
      assert.deepEqual(snapshot(path.join(dst(), 'nested/copy')), snapshot(path.join(dir, src)));
    });

    test('--delete removes what SRC lacks, keeps what is excluded, and respects --max-delete', async () => {
      const copy = path.join(dst(), 'nested/copy');
      fs.writeFileSync(path.join(copy, 'stale.txt'), 'x');
      fs.mkdirSync(path.join(copy, 'stale-dir/inner'), { recursive: true });
      fs.writeFileSync(path.join(copy, 'stale-dir/inner/y'), 'y');
      fs.writeFileSync(path.join(copy, 'keep.log'), 'excluded: never deleted');
      const capped = await run([
        'sync',
        '--delete',
        '--max-delete',
        '2',
        '-e',
        '\\.log$',
        src,
        `${host}:${copy}`,
      ]);
      assert.equal(capped.code, 1, capped.stderr);
      assert.match(capped.stderr, /--max-delete 2: 4 deletions needed, none done/);
      assert.ok(fs.existsSync(path.join(copy, 'stale.txt')));
      const r = await run(['sync', '--delete', '-e', '\\.log$', src, `${host}:${copy}`]);
      assert.equal(r.code, 0, r.stderr);
      const deleted = jsonEvents(r.stdout)
        .filter((e) => e.event === 'delete')
        .map((e) => path.relative(copy, String(e.path)))
        .sort();
      assert.deepEqual(deleted, ['stale-dir', 'stale-dir/inner', 'stale-dir/inner/y', 'stale.txt']);
      assert.equal(fs.readFileSync(path.join(copy, 'keep.log'), 'utf8'), 'excluded: never deleted');
      fs.rmSync(path.join(copy, 'keep.log'));
      assert.deepEqual(snapshot(copy), snapshot(path.join(dir, src)));
    });
  });
}

describe('deltas', () => {
  const MiB = 1 << 20;
  /** Flips one byte at each offset (same size, content changed), with a new mtime. */
  const edit = (file: string, offsets: number[]) => {
    const fd = fs.openSync(file, 'r+');
    for (const o of offsets) {
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, o);
      b[0] ^= 0xff;
      fs.writeSync(fd, b, 0, 1, o);
    }
    fs.closeSync(fd);
    const t = Date.now() / 1000 + 10;
    fs.utimesSync(file, t, t);
  };
  const fileEvent = (stdout: string) =>
    jsonEvents(stdout).find((e) => e.event === 'file' && e.outcome === 'ok');

  for (const [direction, parallel] of [
    ['up', '1'],
    ['up', '4'],
    ['down', '1'],
  ] as const) {
    test(`a 40 MiB file changed in three places moves 64 KiB pieces, not the file (${direction}, -P ${parallel})`, async () => {
      const here = path.join(dir, `delta-${direction}-${parallel}`);
      fs.mkdirSync(here);
      const big = path.join(here, 'big.bin');
      fs.writeFileSync(big, randomBytes(40 * MiB));
      const there = `${dir}/delta-${direction}-${parallel}-copy.bin`;
      const [src, dst] = direction === 'up' ? [big, `bcmr-test:${there}`] : [`bcmr-test:${big}`, there];
      const sync = () => run(['sync', '-P', parallel, src, dst]);
      assert.equal((await sync()).code, 0);
      // Three scattered edits (and, going up, 3 MiB appended) to the source.
      edit(big, [5, 17 * MiB + 3, 39 * MiB]);
      if (direction === 'up') fs.appendFileSync(big, randomBytes(3 * MiB));
      fs.rmSync(sshd.serveLog, { force: true });
      // The shell commands a delta runs there (the base copy, the publish, -p) share one ssh
      // connection of this run's own, ended with it: its directory is in this TMPDIR.
      const tmp = fs.mkdtempSync(path.join(dir, 'tmpdir-'));
      const r = await bcmr(['--json', 'sync', '-P', parallel, '--rsh', sshd.rsh, src, dst], {
        cwd: dir,
        env: { TMPDIR: tmp },
      });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(fs.readdirSync(tmp), [], 'the shared connection is ended, its directory removed');
      const f = fileEvent(r.stdout);
      const sentBytes = Number(f?.bytes);
      const grown = direction === 'up' ? 3 * MiB : 0;
      assert.equal(sentBytes, 3 * 64 * 1024 + grown, JSON.stringify(f));
      assert.equal(Number(f?.kept), fs.statSync(big).size - sentBytes, JSON.stringify(f));
      assert.equal(
        fs.readFileSync(there).equals(fs.readFileSync(big)),
        true,
        'the destination is the source, byte for byte',
      );
      assert.match(
        fs.readFileSync(sshd.serveLog, 'utf8'),
        direction === 'up' ? / PutChunked$/m : / GetChunked$/m,
      );
    });
  }
});

describe('interrupted, and remote -> remote', () => {
  const MiB = 1 << 20;
  test('a sync killed part way completes on the re-run; what was already there does not travel again', async () => {
    const src = path.join(dir, 'int-src');
    fs.mkdirSync(src);
    for (let i = 0; i < 30; i++) fs.writeFileSync(path.join(src, `f${i}`), randomBytes(2 * MiB));
    const dst = path.join(dir, 'int-dst');
    let pid = 0;
    const first = bcmr(['sync', '--compress', 'none', '--rsh', sshd.rsh, src, `bcmr-test:${dst}`], {
      cwd: dir,
      onSpawn: (p) => (pid = p),
    });
    const published = () =>
      fs.existsSync(dst) ? fs.readdirSync(dst).filter((n) => !n.startsWith('.')).length : 0;
    const deadline = Date.now() + 30_000;
    while (published() < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    const before = published();
    process.kill(pid, 'SIGKILL');
    await first;
    assert.ok(before >= 10 && before < 30, `killed with ${before} of 30 files published`);
    const r = await run(['sync', src, `bcmr-test:${dst}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(snapshot(dst), snapshot(src));
    // What was published before the kill does not travel again: skipped by the quick check
    // (published in the source's second) or moved as a delta that sends nothing.
    const events = jsonEvents(r.stdout).filter((e) => e.event === 'file');
    const sentBytes = events.reduce((n, e) => n + Number(e.bytes), 0);
    assert.ok(
      sentBytes <= (30 - before) * 2 * MiB,
      `${sentBytes} bytes sent; ${before} of 30 files were there`,
    );
    assert.ok(
      events.every((e) => Number(e.bytes) === 2 * MiB || Number(e.kept) === 2 * MiB),
      'each file either whole, or kept whole',
    );
    const again = await run(['sync', src, `bcmr-test:${dst}`]);
    assert.deepEqual(sent(again.stdout), []);
  });

  test('remote -> remote (relayed): a re-run sends nothing', async () => {
    sshd.addAlias('bcmr-sync-other', '127.0.0.1', sshd.port);
    const first = await run(['sync', `bcmr-test:${dir}/src`, `bcmr-sync-other:${dir}/r2r`]);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(snapshot(path.join(dir, 'r2r')), snapshot(path.join(dir, 'src')));
    const again = await run(['sync', `bcmr-test:${dir}/src`, `bcmr-sync-other:${dir}/r2r`]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(sent(again.stdout), []);
  });
});

describe('sync down and check', () => {
  test('remote -> local: a re-run sends nothing, a change on the remote moves alone', async () => {
    const local = path.join(dir, 'down');
    const first = await run(['sync', `bcmr-test:${dir}/src`, local]);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(snapshot(local), snapshot(path.join(dir, 'src')));
    const again = await run(['sync', `bcmr-test:${dir}/src`, local]);
    assert.deepEqual(sent(again.stdout), []);
    fs.appendFileSync(path.join(dir, 'src/top.txt'), ' more');
    const r = await run(['sync', `bcmr-test:${dir}/src`, local]);
    assert.deepEqual(sent(r.stdout), ['top.txt']);
    assert.deepEqual(snapshot(local), snapshot(path.join(dir, 'src')));
  });

  test('check: 0 when alike, 1 with each difference named; same size and other mtime is hashed on the server', async () => {
    const copy = path.join(dir, 'checked');
    assert.equal((await run(['sync', 'src', `bcmr-test:${copy}`])).code, 0);
    const alike = await run(['check', 'src', `bcmr-test:${copy}`]);
    assert.equal(alike.code, 0, alike.stderr);
    // Only the mtime differs: the hashes decide it is the same file.
    fs.utimesSync(path.join(copy, 'top.txt'), 1_000_000_000, 1_000_000_000);
    const touched = await run(['check', 'src', `bcmr-test:${copy}`]);
    assert.equal(touched.code, 0, touched.stderr);
    const noHash = await run(['check', '--no-hash', 'src', `bcmr-test:${copy}`]);
    assert.equal(noHash.code, 1, noHash.stderr);
    fs.writeFileSync(path.join(copy, 'extra.txt'), 'e');
    fs.rmSync(path.join(copy, 'sub/f2'));
    const f4 = path.join(copy, 'sub/f4');
    fs.writeFileSync(f4, randomBytes(fs.statSync(f4).size));
    const diff = await run(['check', 'src', `bcmr-test:${copy}`]);
    assert.equal(diff.code, 1, diff.stderr);
    const found = jsonEvents(diff.stdout)
      .filter((e) => e.event === 'difference')
      .map((e) => `${e.kind} ${e.path}`)
      .sort();
    assert.deepEqual(found, ['added sub/f2', 'modified sub/f4', 'removed extra.txt']);
    const missing = await run(['check', 'src', 'bcmr-test:/nonexistent/bcmr-check']);
    assert.equal(missing.code, 1, 'everything is added when DST is not there');
    const broken = await run(['check', 'nope-src', `bcmr-test:${copy}`]);
    assert.equal(broken.code, 2, broken.stderr);
  });
});
