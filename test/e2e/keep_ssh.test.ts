/**
 * --keep-ssh through the real sshd: the run leaves an ssh master on a socket in a private 0700
 * directory under XDG_CACHE_HOME, and the next run goes through it: with the sshd listener gone
 * (new connections refused) a --keep-ssh copy still succeeds, while one without it fails. The
 * master is ended at the end (nothing left running).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr } from './run.js';

let sshd: SshServer;
let dir: string;
let cleanup: () => Promise<void>;
const cache = () => path.join(dir, 'cache');
const run = (args: string[]) =>
  bcmr([...args, '--rsh', sshd.rsh, '--retries', '0'], { cwd: dir, env: { XDG_CACHE_HOME: cache() } });

before(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = await tempDir('bcmr-e2e-keepssh-'));
  fs.writeFileSync(path.join(dir, 'one'), 'x');
});

after(async () => {
  // The kept master ends with its socket's `-O exit` (and would by ControlPersist anyway).
  const sockets = fs.existsSync(path.join(cache(), 'bcmr/ssh'))
    ? fs.readdirSync(path.join(cache(), 'bcmr/ssh'))
    : [];
  for (const s of sockets)
    try {
      execFileSync('ssh', ['-o', `ControlPath=${path.join(cache(), 'bcmr/ssh', s)}`, '-O', 'exit', 'x'], {
        stdio: 'ignore',
      });
    } catch {}
  await sshd?.stop();
  await cleanup?.();
});

test('a kept master carries the next run, even when no new connection could be made', async () => {
  const first = await run(['copy', '-f', '--keep-ssh', '60', 'one', 'bcmr-test:kept1']);
  assert.equal(first.code, 0, first.stderr);
  const sockDir = path.join(cache(), 'bcmr/ssh');
  assert.equal(fs.statSync(sockDir).mode & 0o777, 0o700);
  const [sock] = fs.readdirSync(sockDir);
  assert.ok(sock && fs.statSync(path.join(sockDir, sock)).isSocket(), 'the master socket is there');
  // The listener goes; the master's connection (a session of its own) stays.
  const pid = Number(fs.readFileSync(path.join(sshd.dir, 'sshd.pid'), 'utf8'));
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
      await new Promise((r) => setTimeout(r, 50));
    } catch {
      break;
    }
  }
  const refused = await run(['copy', '-f', 'one', 'bcmr-test:kept2']);
  assert.notEqual(refused.code, 0, 'without --keep-ssh a new connection is refused');
  const kept = await run(['copy', '-f', '--keep-ssh', '60', 'one', 'bcmr-test:kept3']);
  assert.equal(kept.code, 0, kept.stderr);
  assert.equal(fs.readFileSync(path.join(sshd.home, 'kept3'), 'utf8'), 'x');
});

test('--keep-ssh takes whole seconds only', async () => {
  const r = await run(['copy', '--keep-ssh', 'soon', 'one', 'bcmr-test:x']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--keep-ssh/);
});
