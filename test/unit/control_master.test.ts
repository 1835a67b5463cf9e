import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ControlMaster } from '../../src/client/ssh/control_master.js';
import { ConnectionClosedError } from '../../src/errors.js';

// The master's directory goes under os.tmpdir(): a temp dir of this test's own.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bcmr-test-cm-'));
const savedTmpdir = process.env.TMPDIR;
process.env.TMPDIR = tmp;
after(() => {
  if (savedTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmpdir;
  fs.rmSync(tmp, { recursive: true, force: true });
});

const target = { kind: 'remote', user: null, host: 'nowhere.invalid', path: '' } as const;
// `true` stands in for ssh: `-O exit` of a master that never started has nothing to end.
const cfg = { rsh: ['true'] };

test('a closed master refuses every later command: none starts a master, or a directory, that nothing ends', async () => {
  const master = new ControlMaster(cfg, target);
  const opts = master.options;
  assert.ok(
    opts.some((o) => o.startsWith(`ControlPath=${tmp}/bcmr-ssh-`)),
    opts.join(' '),
  );
  assert.equal(fs.readdirSync(tmp).length, 1);
  await master.close();
  assert.deepEqual(fs.readdirSync(tmp), [], 'its directory is removed');
  assert.throws(() => master.options, ConnectionClosedError);
  assert.deepEqual(fs.readdirSync(tmp), [], 'and no new one is made');
  await master.close(); // a second close (Ctrl-C, then the command's end) does nothing
});

test('closed before any command: nothing was made, and nothing is made after', async () => {
  const master = new ControlMaster(cfg, target);
  await master.close();
  assert.throws(() => master.options, ConnectionClosedError);
  assert.deepEqual(fs.readdirSync(tmp), []);
});
