/**
 * The fallback's tar upload against this machine's own sh and tar (no ssh): the manifest's
 * no-clobber and -f publishing, per-file outcomes, a file that changes size while being sent,
 * and the staging directory gone in every case.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { type FeedRunner, uploadTar } from '../../src/client/fallback/tar_upload.js';
import type { FileResult, PutItem } from '../../src/core/items.js';
import { tempDir } from '../helpers/serve.js';

/** Runs the upload's script in a local sh, as the remote would (script first, then the data). */
const localShWith =
  (env: NodeJS.ProcessEnv = process.env): FeedRunner =>
  (script, feed) =>
    runLocalSh(script, feed, env);
const localSh = localShWith();

function runLocalSh(
  script: string,
  feed: Parameters<FeedRunner>[1],
  env: NodeJS.ProcessEnv,
): ReturnType<FeedRunner> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.stdin.on('error', () => {});
    child.once('error', reject);
    const fed = feed((b) => new Promise((ok, bad) => child.stdin.write(b, (e) => (e ? bad(e) : ok())))).then(
      () => child.stdin.end(),
    );
    child.once('close', (code) => void fed.finally(() => resolve({ code, stdout, stderr: stderr.trim() })));
  });
}

async function upload(
  items: PutItem[],
  force: boolean,
  o: { madeDirs?: Set<string>; run?: FeedRunner } = {},
): Promise<Map<string, FileResult<PutItem>>> {
  const out = new Map<string, FileResult<PutItem>>();
  await uploadTar(
    items,
    o.run ?? localSh,
    { force, sync: false, b3sum: false, madeDirs: o.madeDirs },
    {
      onFileDone: (r) => out.set(path.basename(r.item.remote), r),
    },
  );
  return out;
}

test('without -f an existing name is kept and reported; with -f it is replaced; no staging left', async () => {
  const { dir, cleanup } = await tempDir('bcmr-tar-up-');
  try {
    const src = path.join(dir, 'src');
    const dst = path.join(dir, 'dst');
    fs.mkdirSync(src);
    fs.mkdirSync(path.join(dst, 'sub'), { recursive: true });
    for (const n of ['a', 'b', "it's\nodd"]) fs.writeFileSync(path.join(src, n), `new ${n}`);
    fs.writeFileSync(path.join(dst, 'sub', 'b'), 'old b');
    const items = ['a', 'b', "it's\nodd"].map((n) => ({
      local: path.join(src, n),
      remote: path.join(dst, 'sub', n),
    }));
    const first = await upload(items, false);
    assert.equal(first.get('a')?.error, null);
    assert.match(String(first.get('b')?.error), /exists \(use -f to overwrite\)/);
    assert.equal(first.get("it's\nodd")?.error, null);
    assert.equal(fs.readFileSync(path.join(dst, 'sub', 'b'), 'utf8'), 'old b');
    assert.equal(fs.readFileSync(path.join(dst, 'sub', "it's\nodd"), 'utf8'), "new it's\nodd");
    const forced = await upload(items, true);
    for (const r of forced.values()) assert.equal(r.error, null, String(r.error));
    assert.equal(fs.readFileSync(path.join(dst, 'sub', 'b'), 'utf8'), 'new b');
    assert.deepEqual(fs.readdirSync(path.join(dst, 'sub')).sort(), ['a', 'b', "it's\nodd"]);
  } finally {
    await cleanup();
  }
});

test('with -f a directory in the way fails that file alone and is left as it was', async () => {
  const { dir, cleanup } = await tempDir('bcmr-tar-up-');
  try {
    fs.writeFileSync(path.join(dir, 'x'), 'x');
    fs.writeFileSync(path.join(dir, 'y'), 'y');
    fs.mkdirSync(path.join(dir, 'dst', 'x', 'inside'), { recursive: true });
    const items = ['x', 'y'].map((n) => ({ local: path.join(dir, n), remote: path.join(dir, 'dst', n) }));
    const r = await upload(items, true);
    assert.match(String(r.get('x')?.error), /not published/);
    assert.equal(r.get('y')?.error, null);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'dst', 'x')), ['inside']);
    assert.deepEqual(
      fs.readdirSync(path.join(dir, 'dst')).filter((n) => n.startsWith('.bcmr-stage-')),
      [],
    );
  } finally {
    await cleanup();
  }
});

test('a new tree is renamed into place whole; an existing directory gets its files merged, its others kept', async () => {
  const { dir, cleanup } = await tempDir('bcmr-tar-up-');
  try {
    const src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'new', 'deep'), { recursive: true });
    fs.mkdirSync(path.join(src, 'old'));
    fs.writeFileSync(path.join(src, 'new', 'deep', 'n1'), 'n1');
    fs.writeFileSync(path.join(src, 'new', 'n2'), 'n2');
    fs.writeFileSync(path.join(src, 'old', 'o1'), 'o1');
    const dst = path.join(dir, 'dst');
    // What the copy's mkdir step leaves: every planned directory, empty; plus one of the user's.
    fs.mkdirSync(path.join(dst, 'new', 'deep'), { recursive: true });
    fs.mkdirSync(path.join(dst, 'new', 'empty-planned'));
    fs.mkdirSync(path.join(dst, 'old'), { recursive: true });
    fs.writeFileSync(path.join(dst, 'old', 'theirs'), 'keep');
    const rels = ['new/deep/n1', 'new/n2', 'old/o1'];
    const r = await upload(
      rels.map((rel) => ({ local: path.join(src, rel), remote: path.join(dst, rel) })),
      false,
    );
    for (const x of r.values()) assert.equal(x.error, null, String(x.error));
    for (const rel of rels) assert.equal(fs.readFileSync(path.join(dst, rel), 'utf8'), path.basename(rel));
    assert.equal(fs.readFileSync(path.join(dst, 'old', 'theirs'), 'utf8'), 'keep');
    assert.ok(fs.statSync(path.join(dst, 'new', 'empty-planned')).isDirectory());
    assert.deepEqual(fs.readdirSync(dst).sort(), ['new', 'old']);
  } finally {
    await cleanup();
  }
});

test('directories the copy made are replaced by their staged copies; an existing empty one keeps its mode', async () => {
  const { dir, cleanup } = await tempDir('bcmr-tar-up-');
  try {
    const src = path.join(dir, 'src');
    for (const d of ['made/deep', 'theirs']) fs.mkdirSync(path.join(src, d), { recursive: true });
    for (const rel of ['made/deep/m1', 'made/m2', 'theirs/t1']) fs.writeFileSync(path.join(src, rel), rel);
    const dst = path.join(dir, 'dst');
    // The copy's mkdir step made `made` and `made/deep`; `theirs` was there, empty, setgid.
    fs.mkdirSync(path.join(dst, 'made', 'deep'), { recursive: true });
    fs.mkdirSync(path.join(dst, 'theirs'));
    fs.chmodSync(path.join(dst, 'theirs'), 0o2770);
    const madeInode = fs.statSync(path.join(dst, 'made')).ino;
    const rels = ['made/deep/m1', 'made/m2', 'theirs/t1'];
    const r = await upload(
      rels.map((rel) => ({ local: path.join(src, rel), remote: path.join(dst, rel) })),
      false,
      { madeDirs: new Set([path.join(dst, 'made'), path.join(dst, 'made', 'deep')]) },
    );
    for (const x of r.values()) assert.equal(x.error, null, String(x.error));
    for (const rel of rels) assert.equal(fs.readFileSync(path.join(dst, rel), 'utf8'), rel);
    assert.equal(fs.statSync(path.join(dst, 'theirs')).mode & 0o7777, 0o2770, 'the existing directory stays');
    assert.notEqual(fs.statSync(path.join(dst, 'made')).ino, madeInode, 'the made one was renamed in whole');
  } finally {
    await cleanup();
  }
});

test('a staging directory that is not the one the script made (swapped in: not 0700) is refused; nothing published', async () => {
  const { dir, cleanup } = await tempDir('bcmr-tar-up-');
  try {
    // A `mkdir` that makes the directory and then lets it be what another user would swap in.
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    const realMkdir = execFileSync('sh', ['-c', 'command -v mkdir'], { encoding: 'utf8' }).trim();
    fs.writeFileSync(
      path.join(bin, 'mkdir'),
      `#!/bin/sh\n${realMkdir} "$@" || exit 1\nfor a; do last=$a; done\nchmod 0777 -- "$last"\n`,
      { mode: 0o755, flag: 'wx' },
    );
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'f');
    const dst = path.join(dir, 'dst');
    fs.mkdirSync(dst);
    const r = await upload([{ local: path.join(src, 'f'), remote: path.join(dst, 'f') }], false, {
      run: localShWith({ ...process.env, PATH: `${bin}:${process.env.PATH}` }),
    });
    assert.match(String(r.get('f')?.error), /the staging directory was replaced/);
    assert.deepEqual(fs.readdirSync(dst), [], 'nothing published, no staging left');
  } finally {
    await cleanup();
  }
});
