/**
 * The remote publish script, run by a real `sh` in a temp dir: one status per file, a file is
 * reported published only when it is under its final name, failures do not stop the others.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { publishOutcomes, publishScript } from '../../src/client/shell/publish_script.js';
import { tempDir } from '../helpers/serve.js';

describe('publish script', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  after(() => cleanup());

  const run = (files: { from: string; to: string }[], force: boolean) =>
    publishOutcomes(
      execFileSync('sh', ['-s'], { input: publishScript(files, force).text, encoding: 'utf8' }),
      files.length,
    );

  const part = (name: string, text: string) => {
    const p = path.join(dir, `.${name}.bcmr-part`);
    fs.writeFileSync(p, text);
    return p;
  };

  it('without -f: an existing destination fails that file only; the others are published', () => {
    fs.writeFileSync(path.join(dir, 'taken'), 'old');
    const files = [
      { from: part('a', 'A'), to: path.join(dir, 'a') },
      { from: part('taken', 'new'), to: path.join(dir, 'taken') },
      { from: part("it's odd\nname", 'C'), to: path.join(dir, "it's odd\nname") },
    ];
    const out = run(files, false);
    assert.equal(out[0], null);
    assert.match(String(out[1]), /exists/);
    assert.equal(out[2], null);
    assert.equal(fs.readFileSync(path.join(dir, 'a'), 'utf8'), 'A');
    assert.equal(fs.readFileSync(path.join(dir, 'taken'), 'utf8'), 'old');
    assert.equal(fs.readFileSync(files[1].from, 'utf8'), 'new', 'the verified part file stays');
    assert.equal(fs.existsSync(files[0].from), false);
  });

  it('with -f: a destination that is a directory fails, nothing is moved into it', () => {
    fs.mkdirSync(path.join(dir, 'isdir'));
    const files = [
      { from: part('isdir', 'X'), to: path.join(dir, 'isdir') },
      { from: part('b', 'B'), to: path.join(dir, 'b') },
    ];
    fs.writeFileSync(path.join(dir, 'b'), 'old');
    const out = run(files, true);
    assert.match(String(out[0]), /is a directory/);
    assert.equal(out[1], null);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'isdir')), []);
    assert.equal(fs.readFileSync(path.join(dir, 'b'), 'utf8'), 'B');
  });

  it('a file with no status line (the script died) is not reported published', () => {
    assert.deepEqual(publishOutcomes('0 ok\n', 2), [null, 'no status from the remote script']);
  });
});
