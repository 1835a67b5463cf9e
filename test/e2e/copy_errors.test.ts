/**
 * Failures through a real sshd: each gives one clear line, the right exit status, and leaves
 * nothing partial. Also the plain-ssh fallback, a hostile server, and Ctrl-C.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BCMR_BIN, type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, jsonEvents, leftovers, snapshot } from './run.js';

let sshd: SshServer;
let dir: string;
let cleanup: () => Promise<void>;
const remote = (p: string) => `bcmr-test:${p}`;
const copy = (args: string[], opts: { onSpawn?: (pid: number) => void } = {}) =>
  bcmr(['copy', '--rsh', sshd.rsh, ...args], { cwd: dir, ...opts });
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.trim() !== '');

before(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = await tempDir('bcmr-e2e-err-'));
  fs.mkdirSync(path.join(dir, 'tree/sub/empty'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'tree/a.txt'), 'a');
  fs.writeFileSync(path.join(dir, 'tree/sub/b.bin'), randomBytes(300_000));
  fs.writeFileSync(path.join(dir, 'tree/sub/name with space'), 'spaces');
  fs.writeFileSync(path.join(dir, `tree/sub/it's "q" $HOME \`x\` ü.txt`), 'quotes');
  fs.writeFileSync(path.join(dir, 'tree/sub/new\nline\ttab'), 'newline');
});

after(async () => {
  await sshd?.stop();
  await cleanup?.();
});

describe('errors: one line, exit status, nothing partial', () => {
  const cases: [string, () => string[], RegExp][] = [
    ['missing local source', () => ['nope.txt', remote(`${dir}/x`)], /nope\.txt: No such file/],
    ['missing remote source', () => [remote(`${dir}/nope.txt`), 'x'], /nope\.txt: No such file/],
    [
      'missing remote directory',
      () => ['tree/a.txt', remote(`${dir}/no/such/dir/a.txt`)],
      /No such file or directory/,
    ],
    [
      'missing local directory',
      () => [remote(`${dir}/tree/a.txt`), 'no/such/dir/a.txt'],
      /No such file or directory/,
    ],
    ['permission denied on the remote', () => ['tree/a.txt', remote('/sys/kernel/')], /denied|permission/i],
    [
      'unwritable local destination',
      () => [remote(`${dir}/tree/a.txt`), '/sys/kernel/'],
      /EACCES|permission/i,
    ],
    [
      'unwritable remote tree root',
      () => ['-r', 'tree', remote('/sys/kernel/bcmr-tree')],
      /not permitted|denied/i,
    ],
    ['directory without -r', () => ['tree', remote(`${dir}/t2`)], /is a directory \(use -r/],
  ];
  for (const [name, args, pattern] of cases) {
    test(name, async () => {
      const r = await copy(args());
      assert.equal(r.code, 1, r.stderr);
      assert.equal(errorLines(r.stderr).length, 1, r.stderr);
      assert.match(r.stderr, pattern);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.deepEqual(leftovers(dir), []);
    });
  }

  test('connection refused', async () => {
    const r = await copy(['tree/a.txt', 'bcmr-refused:/tmp/x']);
    assert.equal(r.code, 1);
    assert.equal(errorLines(r.stderr).length, 1, r.stderr);
    assert.match(r.stderr, /ssh to bcmr-refused failed: .*Connection refused/);
  });

  test('host key verification failure', async () => {
    const r = await copy(['tree/a.txt', 'bcmr-badkey:/tmp/x']);
    assert.equal(r.code, 1);
    assert.equal(errorLines(r.stderr).length, 1, r.stderr);
    assert.match(r.stderr, /Host key verification failed/);
  });

  test('usage errors exit 2', async () => {
    assert.equal((await copy(['only-one-arg'])).code, 2);
    assert.equal((await copy(['-P', 'zero', 'tree/a.txt', remote('/tmp/x')])).code, 2);
    assert.equal((await copy(['--compress', 'brotli', 'tree/a.txt', remote('/tmp/x')])).code, 2);
    const twoHosts = await copy([remote('/a'), 'other:/b', 'x']);
    assert.equal(twoHosts.code, 2);
  });

  test('a copy that fails before connecting exits at once: the ssh started early is ended', async () => {
    // ssh to the first remote host starts before the copy's code loads (ssh_start.ts); here the
    // arguments are refused after that, and a session left running would keep bcmr alive.
    let pid = 0;
    const killer = setTimeout(() => pid && process.kill(pid, 'SIGKILL'), 15_000);
    try {
      const r = await copy([remote('/a'), 'other:/b', 'x'], { onSpawn: (p) => (pid = p) });
      assert.equal(r.signal, null, 'bcmr did not exit by itself within 15 s');
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /different hosts/);
    } finally {
      clearTimeout(killer);
    }
  });

  test('some files failing gives exit 1 with the others copied', async () => {
    fs.mkdirSync(path.join(dir, 'partial-dest'));
    const r = await copy(['--json', 'tree/a.txt', 'missing.txt', remote(`${dir}/partial-dest`)]);
    assert.equal(r.code, 1);
    const events = jsonEvents(r.stdout).filter((e) => e.event === 'file');
    assert.deepEqual(events.map((e) => e.outcome).sort(), ['failed', 'ok']);
  });
});

describe('fallback to plain ssh', () => {
  const missing = ['--remote-path', 'bcmr-is-not-installed'];

  test('upload and download of a tree, said once on stderr', async () => {
    const up = await copy([...missing, '-r', 'tree', remote(`${dir}/fb-up`)]);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(errorLines(up.stderr).length, 1);
    assert.match(up.stderr, /plain ssh/);
    assert.deepEqual(snapshot(path.join(dir, 'fb-up')), snapshot(path.join(dir, 'tree')));
    const down = await copy([...missing, '--json', '-r', remote(`${dir}/fb-up`), 'fb-down']);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(jsonEvents(down.stdout)[0].via, 'ssh');
    assert.deepEqual(snapshot(path.join(dir, 'fb-down')), snapshot(path.join(dir, 'tree')));
    assert.deepEqual(leftovers(dir), []);
  });

  test('single files both ways, and -f semantics kept', async () => {
    assert.equal((await copy([...missing, 'tree/a.txt', remote(`${dir}/fb-a.txt`)])).code, 0);
    assert.equal(fs.readFileSync(path.join(dir, 'fb-a.txt'), 'utf8'), 'a');
    const again = await copy([...missing, 'tree/sub/b.bin', remote(`${dir}/fb-a.txt`)]);
    assert.equal(again.code, 1);
    assert.equal(fs.readFileSync(path.join(dir, 'fb-a.txt'), 'utf8'), 'a');
    assert.equal((await copy([...missing, '-f', remote(`${dir}/tree/sub/b.bin`), 'fb-b.bin'])).code, 0);
    assert.deepEqual(
      fs.readFileSync(path.join(dir, 'fb-b.bin')),
      fs.readFileSync(path.join(dir, 'tree/sub/b.bin')),
    );
  });

  test('--fast and -V change what is hashed on the fallback path too', async () => {
    const hashOf = async (flags: string[]) => {
      const r = await copy([
        ...missing,
        '--json',
        '-f',
        ...flags,
        remote(`${dir}/tree/a.txt`),
        'fb-fast.txt',
      ]);
      assert.equal(r.code, 0, r.stderr);
      return jsonEvents(r.stdout).find((e) => e.event === 'file')?.blake3;
    };
    const normal = await hashOf([]);
    assert.match(String(normal), /^[0-9a-f]{64}$/);
    assert.equal(await hashOf(['--fast']), null);
    assert.equal(await hashOf(['--fast', '-V']), normal);
  });

  test('--sync on the fallback path makes the remote flush the staged uploads before publishing them', async () => {
    // Fallback scripts travel on stdin (never through the login shell): the wrapper logs it.
    const log = path.join(dir, 'rsh.log');
    const wrapper = path.join(dir, 'logssh.sh');
    fs.writeFileSync(
      wrapper,
      `#!/bin/sh\ncase "$*" in *"count="*) tee -a '${log}' | ${sshd.rsh} "$@" ;; *) exec ${sshd.rsh} "$@" ;; esac\n`,
      { mode: 0o755 },
    );
    const run = (flags: string[]) =>
      bcmr(
        ['copy', '--rsh', wrapper, ...missing, '-f', ...flags, 'tree/a.txt', remote(`${dir}/fb-sync.txt`)],
        { cwd: dir },
      );
    fs.rmSync(log, { force: true });
    assert.equal((await run([])).code, 0);
    assert.match(fs.readFileSync(log, 'utf8'), /tar -x -m -f -/);
    assert.doesNotMatch(fs.readFileSync(log, 'utf8'), /^sync$/m);
    fs.rmSync(log, { force: true });
    assert.equal((await run(['--sync'])).code, 0);
    assert.match(fs.readFileSync(log, 'utf8'), /^sync$/m);
  });

  test('a big upload (one cat) never writes through a symlink planted at its temp name', async () => {
    const victim = path.join(dir, 'fb-victim.txt');
    fs.writeFileSync(victim, 'keep me');
    // From CAT_MIN_BYTES (64 MiB) a file goes alone through `cat` into a temp name; sparse here.
    const big = path.join(dir, 'fb-big.bin');
    fs.writeFileSync(big, '');
    fs.truncateSync(big, 64 << 20);
    // A wrapper that, as a local attacker on the remote would, plants a link at the temp name
    // the script is about to write (read off the script, on the command line or first on stdin)
    // before ssh runs it.
    const wrapper = path.join(dir, 'plantssh.sh');
    fs.writeFileSync(
      wrapper,
      `#!/bin/sh
# The script on the command line (a plain path: ssh then reads the file itself) ...
t=$(printf '%s' "$*" | sed -n "s/.*'t=\\([^;']*\\);.*/\\1/p")
if [ -n "$t" ]; then ln -s '${victim}' "$t"; exec ${sshd.rsh} "$@"; fi
# ... or first on stdin behind the bootstrap, its length on the command line.
n=$(printf '%s' "$*" | sed -n 's/.*count=\\([0-9]*\\).*/\\1/p')
if [ -z "$n" ]; then exec ${sshd.rsh} "$@"; fi
s=$(mktemp); dd bs=1 count="$n" of="$s" 2>/dev/null
t=$(sed -n "s/^t='\\{0,1\\}\\([^';]*\\)'\\{0,1\\};.*/\\1/p" "$s")
[ -n "$t" ] && ln -s '${victim}' "$t"
{ cat "$s"; rm -f "$s"; cat; } | ${sshd.rsh} "$@"
`,
      { mode: 0o755 },
    );
    const r = await bcmr(
      ['copy', '--rsh', wrapper, ...missing, 'fb-big.bin', remote(`${dir}/fb-planted.txt`)],
      {
        cwd: dir,
      },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.equal(fs.readFileSync(victim, 'utf8'), 'keep me');
    assert.equal(fs.existsSync(path.join(dir, 'fb-planted.txt')), false);
    // The planted link is the attacker's, left alone by bcmr; the later tests count temp names.
    const planted = leftovers(dir);
    assert.equal(planted.length, 1, String(planted));
    assert.ok(fs.lstatSync(path.join(dir, planted[0])).isSymbolicLink());
    fs.rmSync(path.join(dir, planted[0]));
    fs.rmSync(big);
  });

  test('--no-fallback makes a missing remote bcmr an error', async () => {
    const r = await copy([...missing, '--no-fallback', 'tree/a.txt', remote(`${dir}/nfb.txt`)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no usable bcmr/);
    assert.equal(fs.existsSync(path.join(dir, 'nfb.txt')), false);
  });
});

describe('a hostile server', () => {
  const hostile = (mode: string) => [
    '--remote-path',
    `'${process.execPath}' '${path.join(path.dirname(BCMR_BIN), '../dist/test/harness/hostile_server.js')}' ${mode}`,
  ];

  test('listing names that climb out or are absolute are refused, never written', async () => {
    fs.mkdirSync(path.join(dir, 'h1'));
    const r = await copy([...hostile('list-escape'), '--json', '-r', remote('/anything'), 'h1']);
    assert.equal(r.code, 1);
    const failed = jsonEvents(r.stdout).filter((e) => e.event === 'file' && e.outcome === 'failed');
    assert.equal(failed.length, 3);
    for (const f of failed) assert.match(String(f.error), /unsafe name/);
    assert.equal(fs.readFileSync(path.join(dir, 'h1/anything/ok.txt'), 'utf8'), '0123456789');
    assert.equal(fs.existsSync(path.join(dir, 'h1/escaped.txt')), false);
    assert.equal(fs.existsSync(path.join(dir, 'escaped.txt')), false);
    assert.equal(fs.existsSync('/tmp/bcmr-absolute-escape.txt'), false);
    assert.equal(fs.existsSync(path.join(dir, 'h1/up.txt')), false);
  });

  test('more bytes than Stat announced: the file fails and nothing is published', async () => {
    const r = await copy([...hostile('more-bytes'), remote('/f'), 'h-more.txt']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /more than the 10 bytes/);
    assert.equal(fs.existsSync(path.join(dir, 'h-more.txt')), false);
    assert.deepEqual(leftovers(dir), []);
  });

  test('a wrong Ok hash: the file fails and nothing is published', async () => {
    const r = await copy([...hostile('bad-hash'), remote('/f'), 'h-hash.txt']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /hash mismatch/);
    assert.equal(fs.existsSync(path.join(dir, 'h-hash.txt')), false);
    assert.deepEqual(leftovers(dir), []);
  });

  test('a name through a destination symlink that leads outside is refused', async () => {
    const outside = path.join(dir, 'outside');
    fs.mkdirSync(outside);
    fs.mkdirSync(path.join(dir, 'h4/t'), { recursive: true });
    fs.symlinkSync(outside, path.join(dir, 'h4/t/link'));
    const r = await copy([...hostile('link-parent'), '-r', '-f', remote('/t'), 'h4']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /symlink|outside/);
    assert.deepEqual(fs.readdirSync(outside), []);
  });
});

describe('a server that stops answering', () => {
  const hostile = (mode: string) => [
    '--remote-path',
    `'${process.execPath}' '${path.join(path.dirname(BCMR_BIN), '../dist/test/harness/hostile_server.js')}' ${mode}`,
  ];
  const timed = async (args: string[]) => {
    const t0 = Date.now();
    const r = await copy(args);
    return { ...r, ms: Date.now() - t0 };
  };

  test('mid-download: one error line naming the wait, within the timeout, nothing published', async () => {
    const r = await timed([...hostile('stall-get'), '--timeout', '2', remote('/f'), 'stalled.txt']);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /silent for \d+ s while waiting for the reply to Get/);
    assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
    assert.equal(fs.existsSync(path.join(dir, 'stalled.txt')), false);
    assert.deepEqual(leftovers(dir), []);
  });

  test('before Welcome: one error line within the timeout', async () => {
    const r = await timed([...hostile('stall-hello'), '--timeout', '2', remote('/f'), 'stalled2.txt']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /no Welcome from the server within 2 s/);
    assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
  });

  test('a Welcome granting caps that were not asked for is refused (exit 3)', async () => {
    const r = await copy([...hostile('extra-caps'), '--no-fallback', remote('/f'), 'caps.txt']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /beyond the 0x[0-9a-f]+ asked for/);
    assert.equal(fs.existsSync(path.join(dir, 'caps.txt')), false);
  });
});

describe('Ctrl-C', () => {
  const cases = [
    ['upload', []],
    ['download', []],
    // One 512 MiB file over 4 connections: ranges into one temp file, remote for an upload.
    ['upload', ['-P', '4']],
    ['download', ['-P', '4']],
  ] as const;
  for (const [dirn, extra] of cases) {
    const how = extra.length ? ' striped over -P 4' : '';
    test(`during a ${dirn}${how}: exit 130, no temp file, no final file`, async () => {
      // Its own directory: a leftover of another case must not set off this one's interrupt.
      const own = fs.mkdtempSync(path.join(dir, 'int-'));
      const big = path.join(own, `int-${dirn}.bin`);
      const fd = fs.openSync(big, 'w');
      const chunk = randomBytes(8 << 20);
      for (let i = 0; i < 64; i++) fs.writeSync(fd, chunk);
      fs.closeSync(fd);
      const target = path.join(own, `int-${dirn}-dest.bin`);
      const args = dirn === 'upload' ? [big, remote(target)] : [remote(big), target];
      let pid = 0;
      const run = copy(['--compress', 'none', ...extra, ...args], { onSpawn: (p) => (pid = p) });
      // Interrupt once bytes are flowing: a temp file exists beside the destination.
      const deadline = Date.now() + 20_000;
      while (leftovers(own).length === 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10));
      process.kill(pid, 'SIGINT');
      const r = await run;
      assert.equal(r.code, 130, r.stderr);
      assert.equal(r.stderr, 'bcmr: Interrupted\n');
      // The remote server removes its temp file when its stdin closes; give it a moment.
      for (let i = 0; i < 100 && leftovers(own).length > 0; i++)
        await new Promise((res) => setTimeout(res, 50));
      assert.deepEqual(leftovers(own), []);
      assert.equal(fs.existsSync(target), false);
      fs.rmSync(big);
    });
  }
});
