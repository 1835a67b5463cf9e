/**
 * `bcmr move` and `bcmr remove` through the real sshd, on a host with bcmr and on the plain-ssh
 * fallback: a moved source goes only once its copy is verified (a failed or refused copy leaves
 * it), remote->remote too; remove asks before a remote removal, refuses the root and a home,
 * keeps what -e names, and removes hostile names exactly (nothing else, nothing run).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BCMR_BIN, type SshServer, startSshd } from '../harness/sshd.js';
import { cannotRun } from '../helpers/cannot_run.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, jsonEvents, leftovers, snapshot } from './run.js';

let sshd: SshServer;
let dir: string;
let cleanup: () => Promise<void>;
const run = (args: string[]) => bcmr([...args, '--rsh', sshd.rsh], { cwd: dir });
const at = (...p: string[]) => path.join(dir, ...p);

/** A small tree with a name that would run as shell if it ever reached one unquoted. */
function makeTree(root: string): void {
  fs.mkdirSync(path.join(root, 'sub/$(touch PWNED)'), { recursive: true });
  fs.writeFileSync(path.join(root, 'a.txt'), 'a\n'.repeat(1000));
  fs.writeFileSync(path.join(root, 'sub/b.bin'), randomBytes(200_000));
  fs.writeFileSync(path.join(root, "sub/$(touch PWNED)/it's `id`.txt"), 'odd');
  fs.writeFileSync(path.join(root, 'keep.log'), 'log');
}

before(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = await tempDir('bcmr-e2e-mvrm-'));
});

after(async () => {
  await sshd?.stop();
  await cleanup?.();
});

const pwned = () =>
  (fs.readdirSync(dir, { recursive: true }) as string[])
    .concat(fs.readdirSync(sshd.home, { recursive: true }) as string[])
    .filter((p) => path.basename(p) === 'PWNED');

/**
 * Runs bcmr on a pseudo-terminal (python3's pty: the questions need one), answering each
 * `[y/N]` with the next of `answers`; returns what the terminal showed and the exit status.
 */
function onTerminal(answers: string[], args: string[]): { code: number; shown: string } {
  const py = `import os, pty, select, sys
answers = [a for a in sys.argv[1].split(',') if a]
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
out = b''
while True:
    r, _, _ = select.select([fd], [], [], 20)
    if not r:
        break
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    out += data
    while b'[y/N]' in out and answers:
        out = out.replace(b'[y/N]', b'[asked]', 1)
        os.write(fd, (answers.pop(0) + '\\n').encode())
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors='replace'))
sys.exit(os.waitstatus_to_exitcode(status))
`;
  try {
    const shown = execFileSync(
      'python3',
      ['-c', py, answers.join(','), process.execPath, BCMR_BIN, ...args, '--rsh', sshd.rsh],
      {
        cwd: dir,
        encoding: 'utf8',
      },
    );
    return { code: 0, shown };
  } catch (err) {
    const e = err as { status: number; stdout: string };
    return { code: e.status, shown: e.stdout };
  }
}

describe('move', () => {
  test('local: a rename; the tree is whole under its new name', async () => {
    makeTree(at('lm'));
    const want = snapshot(at('lm'));
    const r = await run(['move', 'lm', 'lm2']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.existsSync(at('lm')), false);
    assert.deepEqual(snapshot(at('lm2')), want);
  });

  for (const host of ['bcmr-test', 'bcmr-nonode'] as const) {
    test(`up and back down (${host}): sources removed only after verified copies`, async () => {
      const src = `up-${host}`;
      makeTree(at(src));
      const want = snapshot(at(src));
      const up = await run(['move', '--json', src, `${host}:${at(`remote-${host}`)}`]);
      assert.equal(up.code, 0, up.stderr);
      const files = jsonEvents(up.stdout).filter((e) => e.event === 'file');
      assert.equal(files.length, 4);
      assert.ok(files.every((e) => e.outcome === 'ok' && typeof e.blake3 === 'string'));
      assert.equal(fs.existsSync(at(src)), false, 'the local source is gone');
      assert.deepEqual(snapshot(at(`remote-${host}`)), want);
      const down = await run(['move', `${host}:${at(`remote-${host}`)}`, `back-${host}`]);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(fs.existsSync(at(`remote-${host}`)), false, 'the remote source is gone');
      assert.deepEqual(snapshot(at(`back-${host}`)), want);
      assert.deepEqual(pwned(), []);
    });
  }

  test('remote -> remote: from the fallback host to the bcmr host', async () => {
    makeTree(at('r2r'));
    const want = snapshot(at('r2r'));
    const r = await run(['move', `bcmr-nonode:${at('r2r')}`, `bcmr-test:${at('r2r-dst')}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.existsSync(at('r2r')), false);
    assert.deepEqual(snapshot(at('r2r-dst')), want);
  });

  test('a file whose copy fails stays; the others move; exit 1', async () => {
    makeTree(at('partial'));
    // Where b.bin would land is a directory holding a file: that copy fails (even as root).
    fs.mkdirSync(at('partial-dst/partial/sub/b.bin'), { recursive: true });
    fs.writeFileSync(at('partial-dst/partial/sub/b.bin/x'), 'x');
    const r = await run(['move', '-f', 'partial', `bcmr-test:${at('partial-dst')}/`]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /b\.bin/);
    assert.ok(fs.existsSync(at('partial/sub/b.bin')), 'the file that failed is still there');
    assert.equal(fs.existsSync(at('partial/a.txt')), false, 'a moved file is gone');
    assert.equal(fs.readFileSync(at('partial-dst/partial/a.txt'), 'utf8'), 'a\n'.repeat(1000));
    assert.deepEqual(leftovers(at('partial-dst')), []);
  });

  test('a destination that exists is refused without -f, and nothing is removed', async () => {
    makeTree(at('clash'));
    fs.mkdirSync(at('clash-dst'));
    fs.writeFileSync(at('clash-dst/a.txt'), 'theirs');
    const want = snapshot(at('clash'));
    const r = await run(['move', 'clash/a.txt', `bcmr-test:${at('clash-dst')}/`]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /exist/);
    assert.deepEqual(snapshot(at('clash')), want);
    assert.equal(fs.readFileSync(at('clash-dst/a.txt'), 'utf8'), 'theirs');
  });

  test('-n moves nothing', async () => {
    makeTree(at('dry'));
    const want = snapshot(at('dry'));
    const r = await run(['move', '-n', 'dry', `bcmr-test:${at('dry-dst')}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /remove each source/);
    assert.deepEqual(snapshot(at('dry')), want);
    assert.equal(fs.existsSync(at('dry-dst')), false);
  });
});

describe('remove', () => {
  test('local: -r a tree, a file, -d an empty directory; a directory without -r is refused', async () => {
    makeTree(at('lr'));
    fs.mkdirSync(at('lr-empty'));
    const noR = await run(['remove', 'lr']);
    assert.equal(noR.code, 1);
    assert.match(noR.stderr, /is a directory/);
    assert.ok(fs.existsSync(at('lr/a.txt')));
    const r = await run(['remove', '--json', '-r', 'lr', '-d', 'lr-empty']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      jsonEvents(r.stdout)
        .filter((e) => e.event === 'delete')
        .map((e) => e.path),
      ['lr', 'lr-empty'],
    );
    assert.equal(fs.existsSync(at('lr')) || fs.existsSync(at('lr-empty')), false);
  });

  const noPython = (() => {
    try {
      execFileSync('python3', ['-c', 'import pty'], { stdio: 'ignore' });
      return false;
    } catch {
      return 'remove on a terminal NOT tested: no python3 with pty (apt install python3)';
    }
  })();
  test('on a terminal: -i asks per path (y removes, n keeps); a remote removal asks once', {
    skip: cannotRun(noPython),
  }, async () => {
    fs.writeFileSync(at('ask-a'), 'a');
    fs.writeFileSync(at('ask-b'), 'b');
    const local = onTerminal(['y', 'n'], ['remove', '-i', 'ask-a', 'ask-b']);
    assert.equal(local.code, 0, local.shown);
    assert.match(local.shown, /remove file ask-a\? \[asked\]/);
    assert.equal(fs.existsSync(at('ask-a')), false);
    assert.equal(fs.existsSync(at('ask-b')), true);
    makeTree(at('ask-tree'));
    const no = onTerminal(['n'], ['remove', '-r', `bcmr-test:${at('ask-tree')}`]);
    assert.equal(no.code, 0, no.shown);
    assert.match(no.shown, /remove 1 path\(s\) on bcmr-test \(1 with everything below\)\?/);
    assert.ok(fs.existsSync(at('ask-tree/a.txt')), 'declined: nothing removed');
    const yes = onTerminal(['y'], ['remove', '-r', `bcmr-test:${at('ask-tree')}`]);
    assert.equal(yes.code, 0, yes.shown);
    assert.equal(fs.existsSync(at('ask-tree')), false);
  });

  test('a missing path fails (exit 1) unless -f', async () => {
    const r = await run(['remove', 'not-there']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not-there: No such file or directory/);
    assert.equal((await run(['remove', '-f', 'not-there'])).code, 0);
  });

  test('the root, a home, what holds a home, . and .. are refused, here and on a remote', async () => {
    const parent = path.dirname(sshd.home);
    for (const p of [
      '/',
      '.',
      '..',
      'x/..',
      'bcmr-test:',
      'bcmr-test:~',
      `bcmr-test:${sshd.home}`,
      `bcmr-test:${parent}`,
    ]) {
      const r = await run(['remove', '-r', '-f', p]);
      assert.equal(r.code, 1, `${p}: ${r.stderr}`);
      assert.match(r.stderr, /refusing to remove/, p);
    }
    assert.ok(fs.existsSync(sshd.home));
  });

  for (const host of ['bcmr-test', 'bcmr-nonode'] as const) {
    test(`remote (${host}): asks first; -y removes exactly the named tree`, async () => {
      const t = `rr-${host}`;
      makeTree(at(t));
      fs.writeFileSync(at(`${t}-sibling`), 'stays');
      const unasked = await run(['remove', '-r', `${host}:${at(t)}`]);
      assert.equal(unasked.code, 2, 'no terminal to ask on, no -y: a usage error');
      assert.match(unasked.stderr, /-y/);
      assert.ok(fs.existsSync(at(t, 'a.txt')), 'nothing removed');
      const r = await run(['remove', '-r', '-y', `${host}:${at(t)}`, `${host}:${at(t)}-gone`]);
      assert.equal(r.code, 1, 'the missing one fails');
      assert.match(r.stderr, /-gone: No such file or directory/);
      assert.equal(fs.existsSync(at(t)), false);
      assert.equal(fs.readFileSync(at(`${t}-sibling`), 'utf8'), 'stays');
      assert.deepEqual(pwned(), []);
    });

    test(`remote (${host}): -e keeps matching entries and the directories holding them; -n lists`, async () => {
      const t = `re-${host}`;
      makeTree(at(t));
      const dry = await run(['remove', '-n', '-r', `${host}:${at(t)}`]);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /remove .*it's `id`\.txt$/m);
      assert.ok(fs.existsSync(at(t, 'a.txt')));
      const r = await run(['remove', '-r', '-y', '-e', '\\.log$', '-e', 'b\\.bin', `${host}:${at(t)}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        snapshot(at(t)).map((l) => l.split(' ')[0]),
        ['keep.log', 'sub/', 'sub/b.bin'],
      );
      assert.deepEqual(pwned(), []);
    });
  }
});
