/**
 * A tree download never drops an entry without a word. What the server cannot list as what it
 * is (a dangling link, a link leading outside its root, a second link to a directory already
 * listed) reaches the client and fails on its own line; the copy exits 1, and everything else
 * arrives.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, jsonEvents } from './run.js';

describe('entries the server cannot list are reported, not dropped', () => {
  let sshd: SshServer;
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    sshd = await startSshd();
    ({ dir, cleanup } = await tempDir('bcmr-e2e-gaps-'));
    const t = path.join(sshd.forcedRoot, 'tree');
    fs.mkdirSync(path.join(t, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(t, 'ok.txt'), 'ok');
    fs.writeFileSync(path.join(t, 'sub', 'inner.txt'), 'inner');
    fs.symlinkSync('nowhere', path.join(t, 'dangling'));
    fs.symlinkSync('sub', path.join(t, 'again'));
    fs.mkdirSync(path.join(dir, 'outside'));
    fs.writeFileSync(path.join(dir, 'outside', 'secret.txt'), 'secret');
    fs.symlinkSync(path.join(dir, 'outside'), path.join(t, 'out'));
  });
  after(async () => {
    await sshd?.stop();
    await cleanup?.();
  });

  test('a download through a server jailed with --root', async () => {
    // bcmr-forced: a key whose forced command is `bcmr serve --root <forcedRoot>`.
    const r = await bcmr(['--json', 'copy', '-r', 'bcmr-forced:tree', path.join(dir, 'down')], {
      env: { BCMR_RSH: sshd.rsh },
    });
    assert.equal(r.code, 1, r.stderr);
    const files = jsonEvents(r.stdout).filter((e) => e.event === 'file');
    const failed = files
      .filter((e) => e.outcome === 'failed')
      .map((e) => path.basename(String(e.source)))
      .sort();
    assert.ok(failed.includes('dangling') && failed.includes('out'), `failed: ${failed}; ${r.stderr}`);
    // The second way into sub/ (whichever is listed second) may fail too; nothing else does.
    for (const f of failed) assert.ok(['dangling', 'out', 'again'].includes(f), `failed: ${failed}`);
    assert.equal(fs.readFileSync(path.join(dir, 'down', 'ok.txt'), 'utf8'), 'ok');
    assert.equal(fs.readFileSync(path.join(dir, 'down', 'sub', 'inner.txt'), 'utf8'), 'inner');
    assert.equal(fs.existsSync(path.join(dir, 'down', 'out', 'secret.txt')), false);
  });
});
