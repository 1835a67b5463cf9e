/** The copy engine on local paths: cp rules, conflicts, excludes, dry run, -p, links. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseEndpoint } from '../../src/core/endpoint.js';
import { type CopyOptions, runCopy } from '../../src/transfer/copy.js';
import type { CopyReporter, FileEvent } from '../../src/transfer/events.js';
import { PathFilter } from '../../src/transfer/path_filter.js';
import { splitCommand } from '../../src/util/shell.js';
import { tempDir } from '../helpers/serve.js';

function options(over: Partial<CopyOptions> = {}): CopyOptions {
  return {
    recursive: true,
    preserve: false,
    force: false,
    dryRun: false,
    exclude: PathFilter.none,
    deref: true,
    verify: false,
    ssh: { rsh: ['ssh'], remotePath: 'bcmr' },
    parallel: 1,
    compress: 'auto',
    fast: false,
    sync: false,
    fallback: true,
    ...over,
  };
}

function recorder(): CopyReporter & { files: FileEvent[]; lines: string[] } {
  const files: FileEvent[] = [];
  const lines: string[] = [];
  return {
    files,
    lines,
    start() {},
    bytes() {},
    file: (e) => {
      files.push(e);
    },
    notice() {},
    planned: (l) => {
      lines.push(l);
    },
  };
}

const copy = (src: string[], dst: string, o: Partial<CopyOptions> = {}) => {
  const rep = recorder();
  return runCopy(src, dst, options(o), rep, new AbortController().signal).then((out) => ({ out, rep }));
};

test('endpoints: scp rules for what is remote', () => {
  assert.deepEqual(parseEndpoint('host:dir/f'), { kind: 'remote', user: null, host: 'host', path: 'dir/f' });
  assert.deepEqual(parseEndpoint('me@host:'), { kind: 'remote', user: 'me', host: 'host', path: '' });
  assert.deepEqual(parseEndpoint('[::1]:/tmp/x'), {
    kind: 'remote',
    user: null,
    host: '::1',
    path: '/tmp/x',
  });
  assert.deepEqual(parseEndpoint('u@[fe80::1]:a'), { kind: 'remote', user: 'u', host: 'fe80::1', path: 'a' });
  assert.equal(parseEndpoint('./a:b').kind, 'local');
  assert.equal(parseEndpoint('/abs/a:b').kind, 'local');
  assert.equal(parseEndpoint('plain').kind, 'local');
  assert.equal(parseEndpoint(':x').kind, 'local');
});

test('--rsh is split like a shell line', () => {
  assert.deepEqual(splitCommand(`ssh -F "/my dir/cfg" -o 'A=b c' -p\\ 2`), [
    'ssh',
    '-F',
    '/my dir/cfg',
    '-o',
    'A=b c',
    '-p 2',
  ]);
  assert.throws(() => splitCommand('ssh "unterminated'), /Unterminated/);
});

test('trees, trailing slashes and existing directories follow cp -r', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'a/b'), { recursive: true });
    fs.mkdirSync(path.join(src, 'empty'));
    fs.writeFileSync(path.join(src, 'a/b/f'), 'f');
    await copy([src], path.join(dir, 'new'));
    assert.equal(fs.readFileSync(path.join(dir, 'new/a/b/f'), 'utf8'), 'f');
    assert.ok(fs.statSync(path.join(dir, 'new/empty')).isDirectory());
    await copy([`${src}/`], path.join(dir, 'new'));
    assert.equal(fs.readFileSync(path.join(dir, 'new/src/a/b/f'), 'utf8'), 'f');
    await assert.rejects(
      copy([path.join(src, 'a/b/f')], path.join(dir, 'nodir/')),
      /Not a directory|No such file/,
    );
    await assert.rejects(
      copy([path.join(src, 'a/b/f'), path.join(src, 'a')], path.join(dir, 'missing')),
      /not a directory/,
    );
  } finally {
    await cleanup();
  }
});

test('existing files: refused without -f, the TTY answer decides, -f overwrites', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    fs.writeFileSync(path.join(dir, 'a'), 'new');
    fs.writeFileSync(path.join(dir, 'b'), 'old');
    await assert.rejects(copy([path.join(dir, 'a')], path.join(dir, 'b')), /already exist/);
    assert.equal(fs.readFileSync(path.join(dir, 'b'), 'utf8'), 'old');
    let asked: string[] = [];
    await assert.rejects(
      copy([path.join(dir, 'a')], path.join(dir, 'b'), {
        confirmOverwrite: async (p) => {
          asked = p;
          return false;
        },
      }),
      /already exist/,
    );
    assert.deepEqual(asked, [path.join(dir, 'b')]);
    await copy([path.join(dir, 'a')], path.join(dir, 'b'), { confirmOverwrite: async () => true });
    assert.equal(fs.readFileSync(path.join(dir, 'b'), 'utf8'), 'new');
    fs.writeFileSync(path.join(dir, 'b'), 'old');
    await copy([path.join(dir, 'a')], path.join(dir, 'b'), { force: true });
    assert.equal(fs.readFileSync(path.join(dir, 'b'), 'utf8'), 'new');
  } finally {
    await cleanup();
  }
});

test('dry run plans without writing; excludes apply; -p keeps mode and mtime; links', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'keep.txt'), 'k');
    fs.writeFileSync(path.join(src, 'skip.log'), 's');
    fs.chmodSync(path.join(src, 'keep.txt'), 0o640);
    fs.utimesSync(path.join(src, 'keep.txt'), 1_500_000_000, 1_500_000_000);
    fs.symlinkSync('keep.txt', path.join(src, 'link'));
    const dry = await copy([src], path.join(dir, 'dry'), { dryRun: true });
    assert.equal(fs.existsSync(path.join(dir, 'dry')), false);
    assert.ok(dry.rep.lines.some((l) => l.includes('keep.txt')));
    const { out } = await copy([src], path.join(dir, 'p'), {
      preserve: true,
      exclude: new PathFilter([/\.log$/], [], null),
      deref: false,
    });
    assert.equal(out.files, 1);
    assert.equal(fs.existsSync(path.join(dir, 'p/skip.log')), false);
    const st = fs.statSync(path.join(dir, 'p/keep.txt'));
    assert.equal(st.mode & 0o777, 0o640);
    assert.equal(Math.round(st.mtimeMs / 1000), 1_500_000_000);
    assert.equal(fs.readlinkSync(path.join(dir, 'p/link')), 'keep.txt');
  } finally {
    await cleanup();
  }
});

test('-V on a local copy reports the BLAKE3 of each file', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    fs.writeFileSync(path.join(dir, 'a'), 'abc');
    const { rep } = await copy([path.join(dir, 'a')], path.join(dir, 'b'), { verify: true });
    assert.equal(rep.files[0].blake3, '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85');
  } finally {
    await cleanup();
  }
});

test('a symlink loop in a followed tree is reported once as a failure, and the rest is copied', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'sub', 'f'), 'f');
    // Followed (links are followed by default), `sub/back` leads to `src` again: a loop.
    fs.symlinkSync('..', path.join(src, 'sub', 'back'));
    const { out, rep } = await copy([src], path.join(dir, 'dst'), { recursive: true });
    const failed = rep.files.filter((e) => e.outcome === 'failed');
    assert.equal(failed.length, 1, JSON.stringify(rep.files));
    assert.match(String(failed[0].error), /sub\/back: directory loop, not followed/);
    assert.equal(out.failed, 1);
    assert.equal(fs.readFileSync(path.join(dir, 'dst', 'sub', 'f'), 'utf8'), 'f');
    assert.equal(fs.existsSync(path.join(dir, 'dst', 'sub', 'back')), false);
  } finally {
    await cleanup();
  }
});
