/**
 * The fallback's tar upload against this machine's own sh and tar (no ssh): the manifest's
 * no-clobber and -f publishing, per-file outcomes, a file that changes size while being sent,
 * and the staging directory gone in every case.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { type FeedRunner, uploadTar } from '../../src/client/tar_upload.js';
import type { FileResult, PutItem } from '../../src/core/items.js';
import { tempDir } from '../helpers/serve.js';

/** Runs the upload's script in a local sh, as the remote would (script first, then the data). */
const localSh: FeedRunner = (script, feed) =>
  new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
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

async function upload(items: PutItem[], force: boolean): Promise<Map<string, FileResult<PutItem>>> {
  const out = new Map<string, FileResult<PutItem>>();
  await uploadTar(
    items,
    localSh,
    { force, sync: false, b3sum: false },
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
