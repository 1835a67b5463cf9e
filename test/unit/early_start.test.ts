/** The pre-parse guess of a copy's first ssh: the right host and ssh, or nothing when in doubt. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { earlyTarget } from '../../src/cli/early_start.js';

const env = {};
const host = (args: string[], e: NodeJS.ProcessEnv = env) => {
  const s = earlyTarget(args, e);
  return s
    ? `${s.target.host}:${s.target.path} rsh=${s.cfg.rsh.join(' ')} keep=${s.cfg.keepSecs ?? '-'}`
    : null;
};

test('the destination, else the first remote source; --rsh, --keep-ssh and their env', () => {
  assert.equal(host(['-r', 'dir', 'nas:backup/']), 'nas:backup/ rsh=ssh keep=-');
  assert.equal(host(['nas:a', 'b', 'local/']), 'nas:a rsh=ssh keep=-');
  assert.equal(host(['--rsh=ssh -p 2222', 'f', 'h:x']), 'h:x rsh=ssh -p 2222 keep=-');
  assert.equal(host(['--rsh', 'ssh -F c', '--keep-ssh', '30', 'f', 'h:x']), 'h:x rsh=ssh -F c keep=30');
  assert.equal(host(['f', 'h:x'], { BCMR_RSH: 'myssh', BCMR_KEEP_SSH: '0' }), 'h:x rsh=myssh keep=-');
  assert.equal(host(['f', '--to', 'a:1', '--to', 'b:2']), 'a:1 rsh=ssh keep=-');
});

test('an option value is never taken for a host', () => {
  assert.equal(host(['-e', 'evil:x', 'f', 'local']), null);
  assert.equal(host(['--include', 'h:*', 'f', 'g']), null);
});

test('in doubt, nothing: an unknown option, -b, --help, one path, a local copy', () => {
  assert.equal(host(['--frobnicate', 'f', 'h:x']), null);
  assert.equal(host(['-b', 'f', 'h:x']), null);
  assert.equal(host(['-rb', 'f', 'h:x']), null);
  assert.equal(host(['--help']), null);
  assert.equal(host(['h:x']), null);
  assert.equal(host(['a', 'b']), null);
  assert.equal(host(['--rsh']), null);
});
