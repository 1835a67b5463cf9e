/** rsync's filter rules as bcmr reads them: order, anchoring, directory-only rules, --files-from. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type GlobRule, PathFilter, parseFilesFrom } from '../../src/transfer/path_filter.js';

const rules = (...r: string[]): GlobRule[] =>
  r.map((s) => ({ include: s.startsWith('+ '), glob: s.slice(2) }));
/** The entries of a tree (dirs end in /) that the filter keeps, parents pruned as a walk does. */
function kept(f: PathFilter, entries: string[]): string[] {
  const out: string[] = [];
  const pruned: string[] = [];
  for (const e of entries) {
    const isDir = e.endsWith('/');
    const rel = e.replace(/\/$/, '');
    if (pruned.some((p) => rel.startsWith(p))) continue;
    if (f.excludes(rel, isDir)) {
      if (isDir) pruned.push(`${rel}/`);
    } else out.push(e);
  }
  return out;
}
const TREE = [
  'a/',
  'a/x.txt',
  'a/b/',
  'a/b/y.txt',
  'a/b/z.o',
  'c.txt',
  '.hidden.txt',
  'sub/',
  'sub/k.o',
  'x/',
  'x/sub/',
  'x/sub/m.o',
];

describe('PathFilter', () => {
  it('a name pattern matches at any depth, dot files too', () => {
    assert.deepEqual(kept(new PathFilter([], rules('- *.txt'), null), TREE), [
      'a/',
      'a/b/',
      'a/b/z.o',
      'sub/',
      'sub/k.o',
      'x/',
      'x/sub/',
      'x/sub/m.o',
    ]);
  });
  it('first match wins: include the dirs and *.txt, exclude the rest', () => {
    assert.deepEqual(kept(new PathFilter([], rules('+ */', '+ *.txt', '- *'), null), TREE), [
      'a/',
      'a/x.txt',
      'a/b/',
      'a/b/y.txt',
      'c.txt',
      '.hidden.txt',
      'sub/',
      'x/',
      'x/sub/',
    ]);
    // The other order: the exclude wins and nothing is left.
    assert.deepEqual(kept(new PathFilter([], rules('- *', '+ *.txt'), null), TREE), []);
  });
  it('without an include of directories, excluding * leaves them out with all below', () => {
    assert.deepEqual(kept(new PathFilter([], rules('+ *.txt', '- *'), null), TREE), ['c.txt', '.hidden.txt']);
  });
  it('a trailing slash matches only directories; a leading one anchors at the root', () => {
    assert.deepEqual(kept(new PathFilter([], rules('- sub/'), null), TREE), [
      'a/',
      'a/x.txt',
      'a/b/',
      'a/b/y.txt',
      'a/b/z.o',
      'c.txt',
      '.hidden.txt',
      'x/',
    ]);
    assert.deepEqual(
      kept(new PathFilter([], rules('- /sub/'), null), TREE).filter((e) => e.includes('sub')),
      ['x/sub/', 'x/sub/m.o'],
    );
  });
  it('a pattern with a slash matches the end of a path; ** crosses directories', () => {
    assert.deepEqual(
      kept(new PathFilter([], rules('- sub/*.o'), null), TREE).filter((e) => e.endsWith('.o')),
      ['a/b/z.o'],
    );
    assert.deepEqual(
      kept(new PathFilter([], rules('- /a/**.o'), null), TREE).filter((e) => e.endsWith('.o')),
      ['sub/k.o', 'x/sub/m.o'],
    );
  });
  it('-e regexes leave out whatever they match, before the glob rules', () => {
    assert.deepEqual(
      kept(new PathFilter([/^a\//], rules('+ *'), null), TREE).filter((e) => e.startsWith('a')),
      ['a/'],
    );
  });
  it('--files-from keeps the listed paths, everything below a listed directory, and the way there', () => {
    assert.deepEqual(kept(new PathFilter([], [], ['a/b/y.txt', 'x']), TREE), [
      'a/',
      'a/b/',
      'a/b/y.txt',
      'x/',
      'x/sub/',
      'x/sub/m.o',
    ]);
  });
  it('parseFilesFrom: ./ and slashes dropped, comments and blanks skipped, -0, no ..', () => {
    assert.deepEqual(parseFilesFrom('./a/b\n\n# note\nc/\n/d\n', false), ['a/b', 'c', 'd']);
    assert.deepEqual(parseFilesFrom('a b\0#c\0\0d\n', true), ['a b', '#c', 'd\n']);
    assert.throws(() => parseFilesFrom('a/../../etc\n', false), /'\.\.'/);
  });
});
