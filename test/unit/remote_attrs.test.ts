/**
 * -p on a remote: the scripts that read modes and set modes and times, run by the real `sh`
 * here. A file that cannot be read or changed fails on its own, in its own place: the others'
 * modes are never shifted onto the wrong files, and every line runs, not only the last.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { entryFailures, remoteAttrScript } from '../../src/client/shell/attrs_script.js';
import type { RemoteFs } from '../../src/core/remote_fs.js';
import type { PlannedFile } from '../../src/transfer/plan.js';
import { RemoteSide } from '../../src/transfer/sides.js';
import type { ShText } from '../../src/util/shell.js';
import { tempDir } from '../helpers/serve.js';

const runSh = (text: ShText, env: Record<string, string> = {}) =>
  execFileSync('sh', ['-s'], { input: text.text, encoding: 'utf8', env: { ...process.env, ...env } });

describe('remote -p scripts', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ dir, cleanup } = await tempDir('bcmr-attrs-'));
  });
  after(() => cleanup());

  test('modes: a missing file in the middle answers for itself; the others keep their own', async () => {
    const names = ['a', 'gone', "c'$(x)"];
    const modes = [0o640, 0, 0o705];
    for (const [i, n] of names.entries())
      if (n !== 'gone') {
        fs.writeFileSync(path.join(dir, n), n);
        fs.chmodSync(path.join(dir, n), modes[i]);
      }
    const side = new RemoteSide({ script: async (t: ShText) => runSh(t) } as unknown as RemoteFs);
    const files = names.map((n) => ({ src: path.join(dir, n) }) as PlannedFile);
    const got = await side.modes(files);
    assert.equal(got[0], 0o640);
    assert.ok(got[1] instanceof Error, String(got[1]));
    assert.equal(got[2], 0o705);
  });

  for (const [how, env] of [
    ['in one node process', {}],
    ['by chmod and touch (a remote without node)', { BCMR_ATTRS_SH: '1' }],
  ] as const) {
    test(`attrs ${how}: every entry is tried, exactly the failing ones are named`, () => {
      const ok1 = path.join(dir, `ok1-${how.length}`);
      const ok2 = path.join(dir, `ok2 '$(x)\\n-${how.length}`);
      fs.writeFileSync(ok1, '');
      fs.writeFileSync(ok2, '');
      const files = [
        { dest: ok1, mtime: 1_600_000_000, mode: 0o600 },
        { dest: path.join(dir, 'missing'), mtime: 1_600_000_000, mode: 0o600 },
        { dest: ok2, mtime: 1_600_000_100, mode: 0o644 },
      ];
      const script = remoteAttrScript(files, []);
      assert.ok(script);
      const failed = entryFailures(runSh(script, env), files.length, 'failed');
      assert.deepEqual(
        failed.map((e) => e !== null),
        [false, true, false],
      );
      // Nothing is created where a destination is missing (touch -c), and the entry after the
      // failure was applied too.
      assert.equal(fs.existsSync(path.join(dir, 'missing')), false);
      assert.equal(fs.statSync(ok2).mode & 0o777, 0o644);
      assert.equal(Math.floor(fs.statSync(ok2).mtimeMs / 1000), 1_600_000_100);
    });
  }
});
