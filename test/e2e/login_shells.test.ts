/**
 * Accounts whose login shell is not sh (tcsh, fish): sshd hands them our command as text, and
 * csh cannot hold a newline or a `!` inside quotes. Both the bcmr serve start and the plain-ssh
 * fallback must work there, with odd names, both ways. A shell that is not installed is said in
 * one line (`.ci/run` installs both).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { cannotRun } from '../helpers/cannot_run.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, jsonEvents, makeOddTree, snapshot } from './run.js';

const sshd: SshServer = await startSshd({ serveLog: false });
let dir: string;
let cleanup: () => Promise<void>;

before(async () => {
  ({ dir, cleanup } = await tempDir('bcmr-e2e-shells-'));
  makeOddTree(path.join(dir, 'tree'));
});
after(async () => {
  await sshd.stop();
  await cleanup?.();
});

for (const shell of ['csh', 'fish']) {
  const missing = cannotRun(
    sshd.loginShells.includes(shell) ? false : `${shell} is not installed: a ${shell} login shell NOT tested`,
  );
  describe(`a ${shell} login shell`, { skip: missing }, () => {
    const run = (args: string[]) => bcmr(args, { cwd: dir, env: { BCMR_RSH: sshd.rsh } });
    const server = (stdout: string) => String(jsonEvents(stdout)[0].server);

    test('bcmr deploy --check reads the remote through that shell', async () => {
      const r = await run(['deploy', '--check', `bcmr-${shell}-bare`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^os: \S+ \S+$/m);
      assert.match(r.stdout, /^node: none$/m);
    });

    test('fallback: a big file whose name holds a newline and a ! goes up and down whole', async () => {
      // 64 MiB takes the single-file cat path; such a name cannot ride the command line
      // through csh, so its script travels on stdin behind the bootstrap.
      const name = `big\nname!-${shell}.bin`;
      const block = randomBytes(1 << 20);
      fs.writeFileSync(path.join(dir, name), Buffer.concat(Array.from({ length: 64 }, () => block)));
      const upDir = path.join(dir, `big-${shell}-up`);
      fs.mkdirSync(upDir);
      const up = await run(['copy', name, `bcmr-${shell}-bare:${upDir}/`]);
      assert.equal(up.code, 0, up.stderr);
      assert.ok(fs.readFileSync(path.join(upDir, name)).equals(fs.readFileSync(path.join(dir, name))));
      const down = await run(['copy', `bcmr-${shell}-bare:${upDir}/${name}`, `big-${shell}-down`]);
      assert.equal(down.code, 0, down.stderr);
      assert.ok(
        fs.readFileSync(path.join(dir, `big-${shell}-down`)).equals(fs.readFileSync(path.join(dir, name))),
      );
    });

    for (const [alias, kind] of [
      [`bcmr-${shell}`, 'installed'],
      [`bcmr-${shell}-bare`, 'fallback'],
    ]) {
      test(`${kind}: a tree with odd names up and back down`, async () => {
        const up = await run(['--json', 'copy', '-r', 'tree', `${alias}:${dir}/${alias}-up`]);
        assert.equal(up.code, 0, up.stderr);
        assert.equal(server(up.stdout), kind);
        assert.deepEqual(snapshot(path.join(dir, `${alias}-up`)), snapshot(path.join(dir, 'tree')));
        const down = await run(['--json', 'copy', '-r', `${alias}:${dir}/${alias}-up`, `${alias}-down`]);
        assert.equal(down.code, 0, down.stderr);
        assert.equal(server(down.stdout), kind);
        assert.deepEqual(snapshot(path.join(dir, `${alias}-down`)), snapshot(path.join(dir, 'tree')));
      });
    }
  });
}
