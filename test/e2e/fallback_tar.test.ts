/**
 * The plain-ssh fallback as tar streams, through the real sshd to `bcmr-nonode`: a session
 * whose PATH has the system's tools but neither bcmr nor node. Odd names both ways, a hostile
 * tar stream, no-clobber, Ctrl-C leaving no staging directory, and a BSD-flavoured remote
 * (wrappers in front of GNU stat and tar that refuse GNU-only options).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import tarStream from 'tar-stream';
import { BCMR_BIN, type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, jsonEvents, leftovers, makeOddTree, snapshot } from './run.js';

describe('fallback as tar streams (remote with no bcmr and no node)', () => {
  let sshd: SshServer;
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    sshd = await startSshd();
    ({ dir, cleanup } = await tempDir('bcmr-e2e-tar-'));
    makeOddTree(path.join(dir, 'tree'));
    const t = path.join(dir, 'tree');
    fs.writeFileSync(path.join(t, '-leading-dash.txt'), 'dash');
    fs.writeFileSync(path.join(t, `${'long-'.repeat(40)}name.txt`), 'a name of more than 100 bytes');
    fs.symlinkSync('plain.txt', path.join(t, 'link-to-plain'));
  });
  after(async () => {
    await sshd?.stop();
    await cleanup?.();
  });

  const run = (args: string[]) => bcmr(args, { cwd: dir, env: { BCMR_RSH: sshd.rsh } });
  const start = (stdout: string) =>
    jsonEvents(stdout)[0] as { server: string; shell?: Record<string, string> };
  /** The tree as a copy has it: the link followed (as by the bcmr path), so plain.txt's content. */
  const expectedCopy = () => {
    const tree = snapshot(path.join(dir, 'tree'));
    const plain = tree.find((x) => x.startsWith('plain.txt '))?.split(' ')[1];
    return tree.map((l) => (l.startsWith('link-to-plain -> ') ? `link-to-plain ${plain}` : l)).sort();
  };
  /** The remote's `tar -c` sends `archive` instead (extracting is the real tar's). */
  const tarSending = (archive: string) =>
    sshd.replaceTool(
      'tar',
      `#!/bin/sh\ncase "$1" in -c) cat '${archive}' ;; *) exec '${fs.realpathSync('/bin/tar')}' "$@" ;; esac\n`,
    );
  const stagings = (root: string) =>
    (fs.readdirSync(root, { recursive: true }) as string[]).filter((p) => p.includes('.bcmr-stage-'));

  test('a tree with odd names goes up and comes back identical, each way one tar stream', async () => {
    const up = await run(['--json', 'copy', '-r', 'tree', `bcmr-nonode:${dir}/up`]);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(start(up.stdout).server, 'fallback');
    assert.deepEqual(start(up.stdout).shell, { tar: 'gnu', stat: 'gnu', verify: 'size' });
    assert.deepEqual(snapshot(path.join(dir, 'up')), expectedCopy());
    const down = await run(['--json', 'copy', '-r', `bcmr-nonode:${dir}/up`, 'down']);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(snapshot(path.join(dir, 'down')), snapshot(path.join(dir, 'up')));
    assert.deepEqual(stagings(dir), []);
    assert.deepEqual(leftovers(dir), []);
  });

  test('a host found without a server is remembered: the next copy skips the serve attempt, until node appears', async () => {
    const cache = fs.mkdtempSync(path.join(dir, 'cache-'));
    const log = path.join(dir, 'memory-rsh.log');
    const wrapper = path.join(dir, 'memory-rsh.sh');
    fs.writeFileSync(wrapper, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec ${sshd.rsh} "$@"\n`, {
      mode: 0o755,
    });
    fs.writeFileSync(path.join(dir, 'mem.txt'), 'remembered');
    const copy = () => {
      fs.rmSync(log, { force: true });
      return bcmr(['--json', 'copy', '-f', '--rsh', wrapper, 'mem.txt', `bcmr-nonode:${dir}/mem-copy.txt`], {
        cwd: dir,
        env: { XDG_CACHE_HOME: cache },
      });
    };
    const serveAttempts = () =>
      fs
        .readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l.includes('bcmr-home:')).length;
    const first = await copy();
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /no usable bcmr on bcmr-nonode.*copying through plain ssh instead/);
    assert.equal(serveAttempts(), 1);
    const second = await copy();
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /no bcmr on bcmr-nonode \(as last time\); copying through plain ssh/);
    assert.equal(serveAttempts(), 0);
    assert.equal(start(second.stdout).server, 'fallback');
    // A Node 20+ appears on the remote PATH: the probe sees it and bcmr serve (the bundle) is used.
    const node = path.join(sshd.dir, 'nonode-bin', 'node');
    fs.symlinkSync(process.execPath, node);
    try {
      const third = await copy();
      assert.equal(third.code, 0, third.stderr);
      assert.equal(start(third.stdout).server, 'bundle');
    } finally {
      fs.rmSync(node);
    }
    // Forgotten: the next copy tries bcmr serve first again.
    const fourth = await copy();
    assert.equal(fourth.code, 0, fourth.stderr);
    assert.equal(serveAttempts(), 1);
    assert.equal(fs.readFileSync(path.join(dir, 'mem-copy.txt'), 'utf8'), 'remembered');
  });

  test('-C continues a big download after its verified partial file, and starts over when the part differs', async () => {
    const src = path.join(dir, 'resume-src.bin');
    const data = randomBytes(70 << 20);
    fs.writeFileSync(src, data);
    const dst = path.join(dir, 'resume-dst');
    fs.mkdirSync(dst);
    const part = path.join(dst, '.resume-src.bin.bcmr-part');
    const fileEvent = (stdout: string) =>
      jsonEvents(stdout).find((e) => e.event === 'file') as Record<string, unknown>;
    // What an interrupted earlier run leaves: the first 30 MiB, right.
    fs.writeFileSync(part, data.subarray(0, 30 << 20));
    const resumed = await run(['--json', 'copy', '-C', `bcmr-nonode:${src}`, `${dst}/`]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(fileEvent(resumed.stdout).resumedFrom, 30 << 20);
    assert.ok(fs.readFileSync(path.join(dst, 'resume-src.bin')).equals(data));
    assert.equal(fs.existsSync(part), false);
    // A part whose bytes are not the remote file's: nothing of it is kept.
    fs.rmSync(path.join(dst, 'resume-src.bin'));
    const wrong = Buffer.from(data.subarray(0, 30 << 20));
    wrong[12345] ^= 0xff;
    fs.writeFileSync(part, wrong);
    const over = await run(['--json', 'copy', '-C', `bcmr-nonode:${src}`, `${dst}/`]);
    assert.equal(over.code, 0, over.stderr);
    assert.equal(fileEvent(over.stdout).resumedFrom, undefined);
    assert.ok(fs.readFileSync(path.join(dst, 'resume-src.bin')).equals(data));
    fs.rmSync(src);
  });

  test('a big download (ssh writes the file itself) that sends more than listed fails, nothing published', async () => {
    const src = path.join(dir, 'grows.bin');
    fs.writeFileSync(src, '');
    fs.truncateSync(src, 64 << 20);
    const dst = path.join(dir, 'grows-dst');
    fs.mkdirSync(dst);
    // The remote's cat sends the file and then some (a file growing, or a hostile remote).
    const realCat = fs.realpathSync('/bin/cat');
    const fakeCat = sshd.replaceTool('cat', `#!/bin/sh\n'${realCat}' "$@" && printf 'more bytes'\n`);
    try {
      const r = await run(['copy', `bcmr-nonode:${src}`, `${dst}/`]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /more than the 67108864 bytes announced/);
      assert.deepEqual(fs.readdirSync(dst), []);
    } finally {
      fakeCat.restore();
    }
    const ok = await run(['copy', `bcmr-nonode:${src}`, `${dst}/`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(fs.statSync(path.join(dst, 'grows.bin')).size, 64 << 20);
    fs.rmSync(src);
  });

  test('where the remote has b3sum, staged uploads are checked before publishing; a batch that differs is not published', async () => {
    const helper = path.join(path.dirname(BCMR_BIN), '../dist/test/helpers/fake_b3sum.js');
    const src = path.join(dir, 'b3src');
    fs.mkdirSync(src);
    for (const n of ['x.txt', 'y.txt']) fs.writeFileSync(path.join(src, n), `content of ${n}`);
    let fake: { restore: () => void } | null = null;
    const write = (lie: string) => {
      fake?.restore();
      fake = sshd.replaceTool(
        'b3sum',
        `#!/bin/sh\nBCMR_B3SUM_LIE='${lie}' exec '${process.execPath}' '${helper}' "$@"\n`,
      );
    };
    try {
      write('');
      const ok = await run(['--json', 'copy', '-r', 'b3src', `bcmr-nonode:${dir}/b3ok`]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(start(ok.stdout).shell?.verify, 'b3sum');
      assert.equal(fs.readFileSync(path.join(dir, 'b3ok', 'x.txt'), 'utf8'), 'content of x.txt');
      // The remote's copy of y.txt "went bad": neither file of that batch is published.
      write('y.txt');
      const bad = await run(['--json', 'copy', '-r', 'b3src', `bcmr-nonode:${dir}/b3bad`]);
      assert.equal(bad.code, 1, bad.stderr);
      const files = jsonEvents(bad.stdout).filter((e) => e.event === 'file');
      assert.deepEqual(
        files.map((e) => e.outcome),
        ['failed', 'failed'],
      );
      assert.match(String(files[0].error), /differs from what was sent \(BLAKE3\)/);
      assert.deepEqual(
        fs.existsSync(path.join(dir, 'b3bad')) ? fs.readdirSync(path.join(dir, 'b3bad')) : [],
        [],
      );
      assert.deepEqual(stagings(dir), []);
    } finally {
      (fake as { restore: () => void } | null)?.restore();
    }
  });

  test('many files fetched by `cat` at once (4 workers): each download closes only its own descriptor', async () => {
    // The old code closed its descriptor, awaited the hash, then closed the number again: by
    // then another worker's download could hold it (seen: EBADF, or a crash, in 4 of 5 rounds):
    // five rounds, as it is a race.
    const src = path.join(dir, 'many-cat');
    fs.mkdirSync(src);
    for (let i = 0; i < 80; i++) fs.writeFileSync(path.join(src, `f${i}`), randomBytes(200_000));
    for (let round = 0; round < 5; round++) {
      const r = await bcmr(['copy', '-r', `bcmr-nonode:${src}`, `${dir}/many-cat-${round}`], {
        cwd: dir,
        env: { BCMR_RSH: sshd.rsh, BCMR_CAT_MIN_BYTES: '1' },
      });
      assert.equal(r.code, 0, `round ${round}: ${r.stderr}`);
      assert.deepEqual(snapshot(path.join(dir, `many-cat-${round}`)), snapshot(src));
    }
  });

  test('hard links in a downloaded tar stream: to a file it delivered, copied; to anything else, refused', async () => {
    // A real tree with two names for one file: the remote's tar sends the second as a link.
    const src = path.join(dir, 'hl-src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'x'), 'shared bytes');
    fs.linkSync(path.join(src, 'x'), path.join(src, 'y'));
    const r = await run(['--json', 'copy', '-r', `bcmr-nonode:${src}`, 'hl-dst']);
    assert.equal(r.code, 0, r.stderr);
    for (const n of ['x', 'y'])
      assert.equal(fs.readFileSync(path.join(dir, 'hl-dst', n), 'utf8'), 'shared bytes');
    // A crafted stream whose `b` is a hard link to a file it never delivered (here, one that
    // exists on this machine): refused, and nothing is read from or linked to that file.
    const evilSrc = path.join(dir, 'hl-evil-src');
    fs.mkdirSync(evilSrc);
    for (const n of ['a', 'b']) fs.writeFileSync(path.join(evilSrc, n), n);
    const secret = path.join(dir, 'hl-secret');
    fs.writeFileSync(secret, 'SECRET');
    const pack = tarStream.pack();
    const rel = `.${evilSrc}`;
    pack.entry({ name: `${rel}/a`, size: 1 }, 'a');
    pack.entry({ name: `${rel}/b`, type: 'link', linkname: secret.slice(1) });
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of pack) chunks.push(c as Buffer);
    const archive = path.join(dir, 'hl-evil.tar');
    fs.writeFileSync(archive, Buffer.concat(chunks));
    const fakeTar = tarSending(archive);
    try {
      const e = await run(['--json', 'copy', '-r', `bcmr-nonode:${evilSrc}`, 'hl-evil-dst']);
      assert.equal(e.code, 1, e.stderr);
      const files = jsonEvents(e.stdout).filter((x) => x.event === 'file');
      const b = files.find((x) => path.basename(String(x.source)) === 'b');
      assert.equal(b?.outcome, 'failed');
      assert.match(String(b?.error), /not a regular file \(link\)/);
      assert.equal(fs.readFileSync(path.join(dir, 'hl-evil-dst', 'a'), 'utf8'), 'a');
      assert.equal(fs.existsSync(path.join(dir, 'hl-evil-dst', 'b')), false);
    } finally {
      fakeTar.restore();
    }
  });

  test('no clobber without -f, replaced with -f', async () => {
    fs.writeFileSync(path.join(dir, 'one.txt'), 'new content');
    fs.writeFileSync(path.join(dir, 'taken.txt'), 'old content');
    const r = await run(['copy', 'one.txt', `bcmr-nonode:${dir}/taken.txt`]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /exist/);
    assert.equal(fs.readFileSync(path.join(dir, 'taken.txt'), 'utf8'), 'old content');
    const f = await run(['copy', '-f', 'one.txt', `bcmr-nonode:${dir}/taken.txt`]);
    assert.equal(f.code, 0, f.stderr);
    assert.equal(fs.readFileSync(path.join(dir, 'taken.txt'), 'utf8'), 'new content');
    assert.deepEqual(stagings(dir), []);
  });

  test('a hostile tar stream writes nowhere: foreign names stop it, links and FIFOs are refused', async () => {
    const src = path.join(dir, 'hsrc');
    fs.mkdirSync(src);
    for (const n of ['a.txt', 'b.txt', 'c.txt']) fs.writeFileSync(path.join(src, n), n);
    // The archive the remote's "tar" will send instead: a.txt as a symlink to a file outside,
    // b.txt as a FIFO, then a member that climbs out of everything, then c.txt.
    const evil = path.join(dir, 'evil');
    const rel = `.${src}`;
    fs.mkdirSync(path.join(evil, rel), { recursive: true });
    fs.symlinkSync('/etc/hostname', path.join(evil, rel, 'a.txt'));
    execFileSync('mkfifo', [path.join(evil, rel, 'b.txt')]);
    fs.writeFileSync(path.join(evil, 'escape.txt'), 'escaped');
    fs.writeFileSync(path.join(evil, rel, 'c.txt'), 'c.txt');
    const archive = path.join(dir, 'evil.tar');
    execFileSync('tar', [
      '-cf', archive, '-C', evil, '--transform', 's,^escape.txt$,../../../escape.txt,', '--show-transformed-names',
      `${rel}/a.txt`, `${rel}/b.txt`, 'escape.txt', `${rel}/c.txt`,
    ]); // biome-ignore format: argv
    const fakeTar = tarSending(archive);
    try {
      const r = await run(['--json', 'copy', '-r', `bcmr-nonode:${src}`, 'hdst']);
      assert.equal(r.code, 1, r.stderr);
      const files = jsonEvents(r.stdout).filter((e) => e.event === 'file');
      assert.deepEqual(
        files.map((e) => e.outcome),
        ['failed', 'failed', 'failed'],
      );
      const why = Object.fromEntries(files.map((e) => [path.basename(String(e.source)), String(e.error)]));
      assert.match(why['a.txt'], /not a regular file \(symlink\)/);
      assert.match(why['b.txt'], /not a regular file \(fifo\)/);
      assert.match(why['c.txt'], /which was not asked for: stream refused/);
      assert.deepEqual(fs.readdirSync(path.join(dir, 'hdst')), []);
      for (const p of [path.join(dir, '..', 'escape.txt'), path.join(dir, 'escape.txt'), '/escape.txt'])
        assert.equal(fs.existsSync(p), false, p);
    } finally {
      fakeTar.restore();
    }
  });

  test('a remote "tar" that sends no tar at all fails each file with one line, nothing written', async () => {
    const src = path.join(dir, 'gsrc');
    fs.mkdirSync(src);
    for (const n of ['a.txt', 'b.txt']) fs.writeFileSync(path.join(src, n), n);
    const realTar = fs.realpathSync('/bin/tar');
    const fakeTar = sshd.replaceTool(
      'tar',
      `#!/bin/sh\ncase "$1" in -c) head -c 3000 /dev/urandom ;; *) exec '${realTar}' "$@" ;; esac\n`,
    );
    try {
      const r = await run(['--json', 'copy', '-r', `bcmr-nonode:${src}`, 'gdst']);
      assert.equal(r.code, 1, r.stderr);
      const files = jsonEvents(r.stdout).filter((e) => e.event === 'file');
      assert.deepEqual(
        files.map((e) => e.outcome),
        ['failed', 'failed'],
      );
      for (const f of files) assert.match(String(f.error), /the remote tar stream is damaged/);
      assert.deepEqual(fs.readdirSync(path.join(dir, 'gdst')), []);
    } finally {
      fakeTar.restore();
    }
  });

  test('Ctrl-C mid-upload leaves no staging directory on the remote and nothing published', async () => {
    const big = path.join(dir, 'bigtree');
    fs.mkdirSync(big);
    const block = Buffer.alloc(1 << 20, 7);
    for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(big, `f${i}`), block);
    const dest = path.join(dir, 'ctrlc');
    fs.mkdirSync(dest);
    const child = spawn(process.execPath, [BCMR_BIN, 'copy', '-r', 'bigtree', `bcmr-nonode:${dest}/`], {
      cwd: dir,
      env: { ...process.env, BCMR_RSH: sshd.rsh },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await until(() => stagings(dest).length > 0, 'the staging directory to appear');
    child.kill('SIGINT');
    assert.equal(await exited, 130);
    await until(() => stagings(dest).length === 0, 'the staging directory to be removed');
    const published = fs.existsSync(path.join(dest, 'bigtree'))
      ? fs.readdirSync(path.join(dest, 'bigtree'))
      : [];
    assert.deepEqual(published, []);
  });

  test('a BSD-flavoured remote (stat -f, bsdtar; GNU-only options refused) works both ways', async () => {
    const bin = path.join(sshd.dir, 'nonode-bin');
    const real = (n: string) => fs.readlinkSync(path.join(bin, n));
    const saved = { stat: real('stat'), tar: real('tar'), find: real('find'), touch: real('touch') };
    const restores: (() => void)[] = [];
    const wrap = (n: string, body: string) =>
      restores.push(sshd.replaceTool(n, `#!/bin/sh\n${body}\n`).restore);
    // BSD stat: -f FORMAT (%z size, %m mtime, %HT type, %Lp mode); -c is GNU's and refused.
    wrap(
      'stat',
      `a=""; for x in "$@"; do case "$x" in -c|--?*) echo "stat: illegal option -- c" >&2; exit 1 ;; esac; done
f=""; L=""; while [ $# -gt 0 ]; do case "$1" in -L) L=-L; shift ;; -f) f=$(printf '%s' "$2" | sed -e 's/%z/%s/g' -e 's/%m/%Y/g' -e 's/%HT/%F/g' -e 's/%Lp/%a/g'); shift 2 ;; --) shift; break ;; *) break ;; esac; done
exec '${saved.stat}' $L -c "$f" -- "$@"`,
    );
    wrap(
      'tar',
      `case "$1" in --version) echo "bsdtar 3.7.2 - libarchive 3.7.2"; exit 0 ;; esac\nexec '${saved.tar}' "$@"`,
    );
    wrap(
      'find',
      `for x in "$@"; do case "$x" in -printf|-fprintf) echo "find: -printf: unknown primary or operator" >&2; exit 1 ;; esac; done\nexec '${saved.find}' "$@"`,
    );
    // BSD touch has no `-d @SECONDS`.
    wrap(
      'touch',
      `for x in "$@"; do case "$x" in @*) echo "touch: out of range or illegal time specification" >&2; exit 1 ;; esac; done\nexec '${saved.touch}' "$@"`,
    );
    fs.chmodSync(path.join(dir, 'tree', 'plain.txt'), 0o640);
    fs.utimesSync(path.join(dir, 'tree', 'plain.txt'), 1_600_000_000, 1_600_000_000);
    try {
      const up = await run(['--json', 'copy', '-r', '-p', 'tree', `bcmr-nonode:${dir}/bsd-up`]);
      assert.equal(up.code, 0, up.stderr);
      assert.deepEqual(start(up.stdout).shell, { tar: 'bsd', stat: 'bsd', verify: 'size' });
      const down = await run(['copy', '-r', '-p', `bcmr-nonode:${dir}/bsd-up`, 'bsd-down']);
      assert.equal(down.code, 0, down.stderr);
      // -p both ways through BSD stat and touch: mode and mtime of plain.txt kept.
      for (const d of ['bsd-up', 'bsd-down']) {
        const st = fs.statSync(path.join(dir, d, 'plain.txt'));
        assert.equal(st.mode & 0o777, 0o640, d);
        assert.equal(Math.floor(st.mtimeMs / 1000), 1_600_000_000, d);
      }
      assert.deepEqual(snapshot(path.join(dir, 'bsd-down')), snapshot(path.join(dir, 'bsd-up')));
      assert.deepEqual(snapshot(path.join(dir, 'bsd-up')), expectedCopy());
    } finally {
      for (const restore of restores) restore();
    }
  });
});

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
