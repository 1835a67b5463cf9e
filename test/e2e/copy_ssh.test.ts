/**
 * `bcmr copy` end to end through a real sshd on 127.0.0.1: both directions, files and trees,
 * -P 4, and every option changing what it should.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { blake3Hex } from '../../src/codec/hash.js';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, jsonEvents, leftovers, makeOddTree, snapshot } from './run.js';

let sshd: SshServer;
let dir: string;
let cleanup: () => Promise<void>;
const remote = (p: string) => `bcmr-test:${p}`;
const copy = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  bcmr(['copy', '--rsh', sshd.rsh, ...args], { env, cwd: dir });
const serveLog = () => (fs.existsSync(sshd.serveLog) ? fs.readFileSync(sshd.serveLog, 'utf8') : '');
const resetLog = () => fs.rmSync(sshd.serveLog, { force: true });

before(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = await tempDir('bcmr-e2e-'));
  // The source tree every test may copy from; made once here so that no test depends on
  // another having run (any test can be run alone with --test-name-pattern).
  makeOddTree(path.join(dir, 'tree'));
});

after(async () => {
  await sshd?.stop();
  await cleanup?.();
});

describe('single files', () => {
  test('0 B file up and down', async () => {
    fs.writeFileSync(path.join(dir, 'empty.bin'), '');
    const up = await copy(['empty.bin', remote(path.join(dir, 'empty-up.bin'))]);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(fs.statSync(path.join(dir, 'empty-up.bin')).size, 0);
    const down = await copy([remote(path.join(dir, 'empty-up.bin')), 'empty-down.bin']);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(fs.statSync(path.join(dir, 'empty-down.bin')).size, 0);
  });

  test('256 MiB file up and down, hash-checked', async () => {
    const big = path.join(dir, 'big.bin');
    const fd = fs.openSync(big, 'w');
    const chunk = randomBytes(16 << 20);
    for (let i = 0; i < 16; i++) {
      chunk[0] = i;
      fs.writeSync(fd, chunk);
    }
    fs.closeSync(fd);
    const up = await copy(['--json', big, remote(path.join(dir, 'big-up.bin'))]);
    assert.equal(up.code, 0, up.stderr);
    const down = await copy(['--json', remote(path.join(dir, 'big-up.bin')), 'big-down.bin']);
    assert.equal(down.code, 0, down.stderr);
    const local = snapshot(dir).filter((l) => l.startsWith('big'));
    const digests = new Set(local.map((l) => l.split(' ')[1]));
    assert.equal(local.length, 3);
    assert.equal(digests.size, 1, 'all three copies have the same content');
    const [upFile] = jsonEvents(up.stdout).filter((e) => e.event === 'file');
    const [downFile] = jsonEvents(down.stdout).filter((e) => e.event === 'file');
    assert.equal(upFile.bytes, 256 << 20);
    assert.match(String(upFile.blake3), /^[0-9a-f]{64}$/);
    assert.equal(downFile.blake3, upFile.blake3);
    for (const f of ['big.bin', 'big-up.bin', 'big-down.bin']) fs.rmSync(path.join(dir, f));
  });

  test('into an existing directory, to a new name, and to the remote home', async () => {
    fs.writeFileSync(path.join(dir, 'one.txt'), 'one');
    fs.mkdirSync(path.join(dir, 'into'));
    assert.equal((await copy(['one.txt', remote(`${dir}/into`)])).code, 0);
    assert.equal(fs.readFileSync(path.join(dir, 'into/one.txt'), 'utf8'), 'one');
    assert.equal((await copy(['one.txt', remote(`${dir}/renamed.txt`)])).code, 0);
    assert.equal(fs.readFileSync(path.join(dir, 'renamed.txt'), 'utf8'), 'one');
    // `host:` is the remote home (the harness's temp HOME); a relative remote path starts there.
    assert.equal((await copy(['one.txt', 'bcmr-test:'])).code, 0);
    assert.equal(fs.readFileSync(path.join(sshd.home, 'one.txt'), 'utf8'), 'one');
    assert.equal((await copy(['-f', 'one.txt', 'bcmr-test:sub-name.txt'])).code, 0);
    assert.equal(fs.readFileSync(path.join(sshd.home, 'sub-name.txt'), 'utf8'), 'one');
    const back = await copy(['bcmr-test:sub-name.txt', 'from-home.txt']);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(fs.readFileSync(path.join(dir, 'from-home.txt'), 'utf8'), 'one');
  });
});

describe('trees', () => {
  test('-r up and down keeps every entry, names with quotes, newlines and unicode', async () => {
    const up = await copy(['-r', 'tree', remote(`${dir}/tree-up`)]);
    assert.equal(up.code, 0, up.stderr);
    assert.deepEqual(snapshot(path.join(dir, 'tree-up')), snapshot(path.join(dir, 'tree')));
    const down = await copy(['-r', remote(`${dir}/tree-up`), 'tree-down']);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(snapshot(path.join(dir, 'tree-down')), snapshot(path.join(dir, 'tree')));
    assert.deepEqual(leftovers(dir), []);
  });

  test('an existing destination directory receives the tree under its own name (cp -r rule)', async () => {
    fs.mkdirSync(path.join(dir, 'existing'));
    assert.equal((await copy(['-r', 'tree/', remote(`${dir}/existing`)])).code, 0);
    assert.deepEqual(snapshot(path.join(dir, 'existing/tree')), snapshot(path.join(dir, 'tree')));
    fs.mkdirSync(path.join(dir, 'existing-down'));
    assert.equal((await copy(['-r', remote(`${dir}/tree`), 'existing-down'])).code, 0);
    assert.deepEqual(snapshot(path.join(dir, 'existing-down/tree')), snapshot(path.join(dir, 'tree')));
  });

  test('-P 4 opens four connections and copies 300 files both ways', async () => {
    const src = path.join(dir, 'many');
    fs.mkdirSync(src);
    for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(src, `f${i}`), randomBytes(i * 977));
    resetLog();
    const up = await copy(['-r', '-P', '4', '--json', 'many', remote(`${dir}/many-up`)]);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(serveLog().match(/session caps/g)?.length, 4);
    assert.deepEqual(snapshot(path.join(dir, 'many-up')), snapshot(src));
    const events = jsonEvents(up.stdout);
    assert.equal(events.filter((e) => e.event === 'file' && e.outcome === 'ok').length, 300);
    assert.equal(serveLog().match(/ Put$/gm)?.length, 300);
    resetLog();
    const down = await copy(['-r', '-P', '4', remote(`${dir}/many-up`), 'many-down']);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(serveLog().match(/session caps/g)?.length, 4);
    assert.equal(serveLog().match(/ Get$/gm)?.length, 300);
    assert.deepEqual(snapshot(path.join(dir, 'many-down')), snapshot(src));
  });
});

describe('options', () => {
  test('without -f existing files are refused and listed; -f overwrites', async () => {
    fs.writeFileSync(path.join(dir, 'clash.txt'), 'new');
    fs.writeFileSync(path.join(dir, 'clash-remote.txt'), 'old');
    const refused = await copy(['clash.txt', remote(`${dir}/clash-remote.txt`)]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /already exist.*-f/s);
    assert.match(refused.stderr, /clash-remote\.txt/);
    assert.equal(fs.readFileSync(path.join(dir, 'clash-remote.txt'), 'utf8'), 'old');
    const downRefused = await copy([remote(`${dir}/clash.txt`), 'clash-remote.txt']);
    assert.equal(downRefused.code, 1);
    assert.equal(fs.readFileSync(path.join(dir, 'clash-remote.txt'), 'utf8'), 'old');
    const forced = await copy(['-f', 'clash.txt', remote(`${dir}/clash-remote.txt`)]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(fs.readFileSync(path.join(dir, 'clash-remote.txt'), 'utf8'), 'new');
  });

  test('-n prints the plan and copies nothing', async () => {
    const r = await copy(['-n', '-r', 'tree', remote(`${dir}/dry`)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /copy .*plain\.txt/);
    assert.match(r.stdout, /mkdir .*empty dir/);
    assert.equal(fs.existsSync(path.join(dir, 'dry')), false);
  });

  test('-e excludes matching paths, repeatable, both directions', async () => {
    const up = await copy([
      '-r',
      '-e',
      '\\.log$',
      '-e',
      '^nested/deeper/deepest',
      'tree',
      remote(`${dir}/excl`),
    ]);
    assert.equal(up.code, 0, up.stderr);
    const got = snapshot(path.join(dir, 'excl'));
    assert.ok(got.some((l) => l.startsWith('plain.txt')));
    assert.ok(!got.some((l) => l.includes('text.log') || l.includes('deepest')));
    const down = await copy(['-r', '-e', 'plain', remote(`${dir}/tree`), 'excl-down']);
    assert.equal(down.code, 0, down.stderr);
    const d = snapshot(path.join(dir, 'excl-down'));
    assert.ok(!d.some((l) => l.startsWith('plain')));
    assert.ok(d.some((l) => l.includes('text.log')));
  });

  test('a copy that matches nothing is an error', async () => {
    const r = await copy(['-r', '-e', '.', 'tree/plain.txt', remote(`${dir}/nothing.txt`)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nothing to copy/);
  });

  test('-v lists files on stdout; -q prints nothing; plain progress goes to stderr', async () => {
    const v = await copy(['-v', 'tree/plain.txt', remote(`${dir}/v.txt`)]);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /plain\.txt -> .*v\.txt/);
    const q = await copy(['-q', '-f', 'tree/plain.txt', remote(`${dir}/v.txt`)]);
    assert.equal(q.code, 0);
    assert.equal(q.stdout + q.stderr, '');
    const quiet = await copy(['-f', 'tree/plain.txt', remote(`${dir}/v.txt`)]);
    assert.equal(quiet.stdout + quiet.stderr, '', 'not a TTY: nothing but errors');
    const plain = await copy(['-r', '--progress', 'plain', 'tree', remote(`${dir}/plain-progress`)]);
    assert.equal(plain.code, 0);
    assert.match(plain.stderr, /\d+% .*ETA/);
    assert.match(plain.stderr, /Copied 7 file\(s\)/);
    const inline = await copy(['-r', '-f', '--progress', 'inline', 'tree', remote(`${dir}/plain-progress`)]);
    assert.equal(inline.code, 0);
    assert.ok(inline.stderr.includes('\u001b[2K'), 'redraws its block in place');
    assert.match(inline.stderr, /\d+% .*ETA/);
    assert.match(inline.stderr, /Copied 7 file\(s\)/);
  });

  test('--json: start, one event per file with BLAKE3, summary', async () => {
    const r = await copy(['--json', '-r', 'tree', remote(`${dir}/json`)]);
    assert.equal(r.code, 0, r.stderr);
    const ev = jsonEvents(r.stdout);
    assert.equal(ev[0].event, 'start');
    assert.equal(ev[0].op, 'upload');
    assert.equal(ev[0].plane, 'ssh');
    const files = ev.filter((e) => e.event === 'file');
    assert.equal(files.length, 7);
    for (const f of files) {
      assert.equal(f.outcome, 'ok');
      assert.match(String(f.blake3), /^[0-9a-f]{64}$/);
      assert.equal(typeof f.bytes, 'number');
      assert.equal(typeof f.ms, 'number');
    }
    const sum = ev[ev.length - 1];
    assert.equal(sum.event, 'summary');
    assert.equal(sum.files, 7);
    assert.equal(sum.failed, 0);
    assert.equal(sum.exit, 0);
  });

  test('-p keeps mode and mtime both ways', async () => {
    const f = path.join(dir, 'modes.sh');
    fs.writeFileSync(f, '#!/bin/sh\n');
    fs.chmodSync(f, 0o751);
    fs.utimesSync(f, 1_000_000_000, 1_000_000_000);
    assert.equal((await copy(['-p', 'modes.sh', remote(`${dir}/modes-up.sh`)])).code, 0);
    const up = fs.statSync(path.join(dir, 'modes-up.sh'));
    assert.equal(up.mode & 0o777, 0o751);
    assert.equal(Math.round(up.mtimeMs / 1000), 1_000_000_000);
    assert.equal((await copy(['-p', remote(`${dir}/modes-up.sh`), 'modes-down.sh'])).code, 0);
    const down = fs.statSync(path.join(dir, 'modes-down.sh'));
    assert.equal(down.mode & 0o777, 0o751);
    assert.equal(Math.round(down.mtimeMs / 1000), 1_000_000_000);
    assert.equal((await copy(['modes.sh', remote(`${dir}/modes-nop.sh`)])).code, 0);
    assert.notEqual(Math.round(fs.statSync(path.join(dir, 'modes-nop.sh')).mtimeMs / 1000), 1_000_000_000);
  });

  test('--no-deref replicates links; by default links are followed', async () => {
    const src = path.join(dir, 'links');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'target.txt'), 'target');
    fs.symlinkSync('target.txt', path.join(src, 'link.txt'));
    assert.equal((await copy(['-r', '--no-deref', 'links', remote(`${dir}/links-nd`)])).code, 0);
    assert.equal(fs.readlinkSync(path.join(dir, 'links-nd/link.txt')), 'target.txt');
    assert.equal((await copy(['-r', 'links', remote(`${dir}/links-d`)])).code, 0);
    assert.equal(fs.lstatSync(path.join(dir, 'links-d/link.txt')).isSymbolicLink(), false);
    assert.equal(fs.readFileSync(path.join(dir, 'links-d/link.txt'), 'utf8'), 'target');
  });

  test('--compress, --fast and --sync change the capabilities asked for', async () => {
    const caps = async (args: string[], down = false) => {
      resetLog();
      const r = down
        ? await copy([...args, '-f', remote(`${dir}/tree/plain.txt`), 'caps.txt'])
        : await copy([...args, '-f', 'tree/plain.txt', remote(`${dir}/caps.txt`)]);
      assert.equal(r.code, 0, r.stderr);
      return Number.parseInt(/caps=0x([0-9a-f]+)/.exec(serveLog())?.[1] ?? 'x', 16);
    };
    assert.equal((await caps([])) & 0x03, 0x03);
    assert.equal((await caps(['--compress', 'none'])) & 0x03, 0);
    assert.equal((await caps(['--compress', 'lz4'])) & 0x03, 0x01);
    assert.equal((await caps(['--compress', 'zstd'])) & 0x03, 0x02);
    assert.equal((await caps(['--fast'], true)) & 0x08, 0x08);
    assert.equal((await caps([], true)) & 0x08, 0);
    assert.equal((await caps(['--sync'])) & 0x10, 0x10);
  });

  test('--fast downloads hash nothing (no blake3 reported) unless -V re-hashes the result', async () => {
    const hashOf = async (flags: string[]) => {
      const r = await copy(['--json', ...flags, '-f', remote(`${dir}/tree/plain.txt`), 'fast.txt']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(fs.readFileSync(path.join(dir, 'fast.txt'), 'utf8'), 'hello\n');
      return jsonEvents(r.stdout).find((e) => e.event === 'file')?.blake3;
    };
    const normal = await hashOf([]);
    assert.match(String(normal), /^[0-9a-f]{64}$/);
    assert.equal(await hashOf(['--fast']), null);
    assert.equal(await hashOf(['--fast', '-V']), normal);
  });

  test('-V re-reads each destination and compares hashes', async () => {
    resetLog();
    const up = await copy(['-V', '-r', 'tree', remote(`${dir}/verified`)]);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(serveLog().match(/ Hash$/gm)?.length, 7, 'one Hash per uploaded file');
    resetLog();
    const plainUp = await copy(['-r', 'tree', remote(`${dir}/unverified`)]);
    assert.equal(plainUp.code, 0);
    assert.equal(serveLog().match(/ Hash$/gm), null);
    // Downloads: with --fast nothing is hashed in transit, so -V must ask the server for each
    // source's hash (one Hash per file) and compare it with the file written here.
    resetLog();
    const down = await copy(['-V', '--fast', '--json', '-r', remote(`${dir}/tree`), 'verified-down']);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(serveLog().match(/ Hash$/gm)?.length, 7, 'one Hash per downloaded file');
    const files = jsonEvents(down.stdout).filter((e) => e.event === 'file');
    assert.equal(files.length, 7);
    for (const f of files) {
      assert.equal(f.outcome, 'ok');
      assert.equal(f.blake3, blake3Hex(fs.readFileSync(path.resolve(dir, String(f.path)))), String(f.path));
    }
  });

  test('BCMR_RSH and --remote-path select the ssh command and the remote bcmr', async () => {
    // The alternative bcmr leaves a mark when it runs: the copy must have gone through it,
    // not through the `bcmr` on the remote PATH (which would copy just as well).
    const alt = path.join(sshd.dir, 'alt-bcmr');
    const mark = path.join(dir, 'alt-bcmr-ran');
    fs.writeFileSync(
      alt,
      `#!/bin/sh\necho "$*" >> '${mark}'\nexec '${path.join(sshd.binDir, 'bcmr')}' "$@"\n`,
      {
        mode: 0o755,
      },
    );
    fs.rmSync(mark, { force: true });
    const r = await bcmr(['copy', '--remote-path', alt, '-f', 'tree/plain.txt', remote(`${dir}/rsh.txt`)], {
      env: { BCMR_RSH: sshd.rsh },
      cwd: dir,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(fs.readFileSync(path.join(dir, 'rsh.txt'), 'utf8'), 'hello\n');
    assert.match(fs.readFileSync(mark, 'utf8'), /^serve --root \//);
  });
});

describe('hardening (issue 11)', () => {
  test('a key forced to `bcmr serve --root DIR` copies both ways; paths start at that root', async () => {
    const src = path.join(dir, 'forced-src');
    makeOddTree(src);
    fs.mkdirSync(path.join(sshd.forcedRoot, 'backup'));
    const up = await copy(['-r', 'forced-src', 'bcmr-forced:backup/']);
    assert.equal(up.code, 0, up.stderr);
    assert.deepEqual(snapshot(path.join(sshd.forcedRoot, 'backup/forced-src')), snapshot(src));
    const down = await copy(['-r', 'bcmr-forced:backup/forced-src', 'forced-back']);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(snapshot(path.join(dir, 'forced-back')), snapshot(src));
    // Outside that root is refused by the server, whatever the client asks.
    const out = await copy(['bcmr-forced:../x', 'nope.txt']);
    assert.equal(out.code, 1);
    assert.match(out.stderr, /escape/);
  });

  test('`..` in a remote path is resolved on the client, as scp does', async () => {
    fs.mkdirSync(path.join(dir, 'dots/a'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'dots/b.txt'), 'b');
    const r = await copy([remote(path.join(dir, 'dots/a/../b.txt')), 'dots-b.txt']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(path.join(dir, 'dots-b.txt'), 'utf8'), 'b');
  });

  test('a FIFO in a tree is skipped and said, both ways; everything else is copied, exit 0', async () => {
    const src = path.join(dir, 'fifo-src');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'a.txt'), 'a');
    fs.writeFileSync(path.join(src, 'sub/b.txt'), 'b');
    execFileSync('mkfifo', [path.join(src, 'sub/pipe')]);
    const t0 = Date.now();
    const up = await copy(['-r', 'fifo-src', remote(path.join(dir, 'fifo-up'))]);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stderr, /skipping .*pipe: a FIFO/);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'fifo-up/sub')), ['b.txt']);
    const down = await copy(['-r', remote(src), 'fifo-down']);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stderr, /skipping .*pipe: not a regular file/);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'fifo-down/sub')), ['b.txt']);
    assert.equal(fs.readFileSync(path.join(dir, 'fifo-down/a.txt'), 'utf8'), 'a');
    assert.ok(Date.now() - t0 < 30_000);
  });
});
