/**
 * The remote removal scripts, run by a real `sh` in a temp dir: generated hostile names
 * (fast-check, seed printed on failure) are removed exactly, nothing else is, nothing runs;
 * each failure is said for its own path; chunked `rm` reports the one file that failed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { entryFailures } from '../../src/client/shell/attrs_script.js';
import { removeFilesScript, removeOutcomes, removeScript } from '../../src/client/shell/remove_script.js';
import { tempDir } from '../helpers/serve.js';

const SPECIAL = [...'\\\'"$`!;&|<>(){}[]*?~#= \t\nab%^é日-'];
const nameArb = fc
  .array(fc.constantFrom(...SPECIAL), { minLength: 1, maxLength: 12 })
  .map((a) => a.join('').replaceAll('/', ''))
  .filter((n) => n !== '.' && n !== '..');
const seed = Number(process.env.BCMR_TEST_SEED) || Date.now() % 1_000_000;

describe('remove scripts', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ dir, cleanup } = await tempDir('bcmr-rmscript-'));
  });
  after(() => cleanup());
  const sh = (text: string) => execFileSync('sh', ['-s'], { input: text, encoding: 'utf8', cwd: dir });

  it(`hostile names go exactly, the sibling stays, nothing runs (seed ${seed})`, () => {
    let n = 0;
    fc.assert(
      fc.property(nameArb, nameArb, (fileName, dirName) => {
        const box = path.join(dir, `case${n++}`);
        fs.mkdirSync(path.join(box, dirName), { recursive: true });
        fs.writeFileSync(path.join(box, dirName, 'inner'), 'x');
        const file = path.join(box, `f-${fileName}`);
        fs.writeFileSync(file, 'x');
        fs.writeFileSync(path.join(box, 'sibling'), 'stays');
        const items = [
          { path: file, kind: 'file' as const },
          { path: path.join(box, dirName), kind: 'tree' as const },
        ];
        const out = removeOutcomes(sh(removeScript(items).text), items.length);
        assert.deepEqual(out, [null, null]);
        assert.deepEqual(fs.readdirSync(box), ['sibling']);
        assert.deepEqual(
          (fs.readdirSync(dir, { recursive: true }) as string[]).filter((p) => /PWNED|^id$/.test(p)),
          [],
        );
      }),
      { numRuns: 60, seed },
    );
  });

  it('a failure is said for its own path, in rm words; the others still go', () => {
    const box = path.join(dir, 'fails');
    fs.mkdirSync(path.join(box, 'full'), { recursive: true });
    fs.writeFileSync(path.join(box, 'full/x'), 'x');
    fs.writeFileSync(path.join(box, 'a'), 'a');
    fs.mkdirSync(path.join(box, 'empty'));
    const items = [
      { path: path.join(box, 'full'), kind: 'dir' as const },
      { path: path.join(box, 'a'), kind: 'file' as const },
      { path: path.join(box, 'empty'), kind: 'dir' as const },
    ];
    const out = removeOutcomes(sh(removeScript(items).text), items.length);
    assert.match(String(out[0]), /not empty/i);
    assert.equal(out[1], null);
    assert.equal(out[2], null);
    assert.deepEqual(fs.readdirSync(box), ['full']);
  });

  it('many files in few rm processes: only the one that cannot go is reported', () => {
    const box = path.join(dir, 'many');
    fs.mkdirSync(path.join(box, 'd/blocker'), { recursive: true });
    const files: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const f = path.join(box, 'd', `file number ${i} with a long name to fill the chunks ${'x'.repeat(20)}`);
      fs.writeFileSync(f, '');
      files.push(f);
    }
    fs.writeFileSync(path.join(box, 'd/blocker/y'), 'y');
    files.splice(1234, 0, path.join(box, 'd/blocker')); // a directory: rm -f cannot remove it
    const script = removeFilesScript(files, [path.join(box, 'd/blocker'), path.join(box, 'd')]).text;
    assert.ok(script.split('\n').filter((l) => l.startsWith('rm ')).length < 10, 'chunked');
    const failed = entryFailures(sh(script), files.length, 'rm failed');
    assert.deepEqual(
      failed.flatMap((e, i) => (e ? [i] : [])),
      [1234],
    );
    assert.deepEqual(fs.readdirSync(path.join(box, 'd')), ['blocker']);
  });
});
