/**
 * ServeClient <-> serve session, in process over pipes and against a spawned `bcmr serve`:
 * every operation, boundary sizes, compression, pipelining, errors and hostile paths.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { getFiles } from '../../src/client/serve/get_files.js';
import { putFiles } from '../../src/client/serve/put_files.js';
import { blake3Hex } from '../../src/codec/hash.js';
import { RemoteError } from '../../src/errors.js';
import { Cap } from '../../src/protocol/constants.js';
import {
  type Connected,
  connectInProcess,
  connectSpawned,
  getBuffer,
  putBuffer,
  tempDir,
} from '../helpers/serve.js';

const MiB = 1024 * 1024;
const SIZES = [0, 1, 4 * MiB, 4 * MiB + 1];

function text(n: number): Buffer {
  const line = Buffer.from('the quick brown fox jumps over the lazy dog 0123456789\n');
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += line.length) line.copy(b, i, 0, Math.min(line.length, n - i));
  return b;
}

for (const mode of ['in-process', 'spawned'] as const) {
  describe(`ServeClient <-> serve (${mode})`, () => {
    let root: string;
    let local: string;
    let cleanups: (() => Promise<void>)[] = [];
    const connect = async (caps?: number): Promise<Connected> => {
      const c =
        mode === 'in-process' ? await connectInProcess(root, { caps }) : await connectSpawned(root, { caps });
      cleanups.push(() => c.client.close());
      return c;
    };

    before(async () => {
      const a = await tempDir();
      const b = await tempDir();
      root = a.dir;
      local = b.dir;
      cleanups = [a.cleanup, b.cleanup];
    });
    after(async () => {
      for (const c of cleanups.reverse()) await c();
    });

    it('negotiates caps: zstd preferred, LZ4 alone, raw', async () => {
      assert.equal((await connect()).client.codec, 'zstd');
      assert.equal((await connect(Cap.LZ4)).client.codec, 'lz4');
      const raw = (await connect(Cap.DEDUP)).client;
      assert.equal(raw.codec, 'none');
      assert.equal(raw.caps, Cap.DEDUP);
    });

    for (const size of SIZES) {
      it(`puts and gets a ${size}-byte file with matching BLAKE3`, async () => {
        const { client } = await connect();
        const data = randomBytes(size);
        const name = `sz-${size}.bin`;
        const putHash = await putBuffer(client, name, data);
        assert.equal(putHash, blake3Hex(data));
        assert.deepEqual(await readFile(path.join(root, name)), data);
        const got = await getBuffer(client, name);
        assert.equal(got.data.length, size);
        assert.ok(got.data.equals(data));
        assert.equal(got.hash, blake3Hex(data));
        assert.equal(await client.hash(name), blake3Hex(data));
      });
    }

    for (const caps of [Cap.ZSTD, Cap.LZ4, 0]) {
      it(`round-trips compressible and random data with caps ${caps}`, async () => {
        const { client } = await connect(caps | Cap.PUT_OFFSET);
        for (const data of [text(9 * MiB + 17), randomBytes(5 * MiB)]) {
          const name = `c-${caps}-${data.length}`;
          assert.equal(await putBuffer(client, name, data), blake3Hex(data));
          const got = await getBuffer(client, name);
          assert.ok(got.data.equals(data));
        }
      });
    }

    it('streams a 100 MiB file both ways with the right hash', async () => {
      const { client } = await connect();
      const data = randomBytes(100 * MiB);
      await writeFile(path.join(local, 'big.src'), data);
      const up = await putFiles(client, [{ local: path.join(local, 'big.src'), remote: 'big.bin' }]);
      assert.equal(up[0].error, null);
      assert.equal(up[0].hash, blake3Hex(data));
      const down = await getFiles(client, [
        { remote: 'big.bin', local: path.join(local, 'big.back'), size: data.length },
      ]);
      assert.equal(down[0].error, null);
      assert.ok((await readFile(path.join(local, 'big.back'))).equals(data));
    });

    it('answers Stat, List, Mkdir, Hash with limit, Resume and Truncate', async () => {
      const { client } = await connect();
      await client.mkdir('t/a/b');
      await putBuffer(client, 't/a/b/f.txt', Buffer.from('hello'));
      await putBuffer(client, 't/top.bin', randomBytes(4 * MiB + 10));
      const st = await client.stat('t/a/b/f.txt');
      assert.deepEqual([st.size, st.isDir], [5, false]);
      assert.ok(Math.abs(st.mtime - Date.now() / 1000) < 100);
      assert.equal((await client.stat('t/a')).isDir, true);
      const entries = await client.list('t');
      const names = entries.map((e) => `${e.path}:${e.isDir ? 'd' : e.size}`).sort();
      assert.deepEqual(names, ['a/b/f.txt:5', 'a/b:d', 'a:d', 'top.bin:4194314']);
      const parents = entries.map((e) => e.path);
      assert.ok(parents.indexOf('a') < parents.indexOf('a/b'));
      assert.equal(await client.hash('t/a/b/f.txt', 1, 3), blake3Hex(Buffer.from('ell')));
      const r = await client.resume('t/top.bin');
      const top = await readFile(path.join(root, 't/top.bin'));
      assert.deepEqual(r, { size: 4 * MiB + 10, blockHash: blake3Hex(top.subarray(0, 4 * MiB)) });
      assert.deepEqual(await client.resume('t/nothing'), { size: 0, blockHash: null });
      await client.truncate('t/new/trunc.bin', 10);
      assert.deepEqual(await readFile(path.join(root, 't/new/trunc.bin')), Buffer.alloc(10));
    });

    it('resumes an upload with Put offset and a download with Get offset', async () => {
      const { client } = await connect();
      const data = randomBytes(6 * MiB);
      await writeFile(path.join(root, 'part.bin'), data.subarray(0, 2 * MiB));
      const h = await client.put('part.bin', { size: data.length, offset: 2 * MiB }, async (emit) => {
        await emit(data.subarray(2 * MiB, 6 * MiB));
      });
      assert.equal(h, null);
      assert.ok((await readFile(path.join(root, 'part.bin'))).equals(data));
      const tail = await getBuffer(client, 'part.bin', 5 * MiB);
      assert.ok(tail.data.equals(data.subarray(5 * MiB)));
      assert.equal(tail.hash, blake3Hex(data.subarray(5 * MiB)));
    });

    it('stripes with Truncate, PutChunked and GetChunked', async () => {
      const { client } = await connect();
      const data = randomBytes(9 * MiB + 3);
      await client.truncate('striped.bin', data.length);
      const ranges = [
        [0, 4 * MiB],
        [4 * MiB, 5 * MiB + 3],
      ];
      for (const [off, len] of ranges.reverse()) {
        await client.putChunked('striped.bin', off, len, async (emit) => {
          for (let o = off; o < off + len; o += 4 * MiB)
            await emit(data.subarray(o, Math.min(o + 4 * MiB, off + len)));
        });
      }
      assert.ok((await readFile(path.join(root, 'striped.bin'))).equals(data));
      const parts: Buffer[] = [];
      await client.getChunked('striped.bin', 4 * MiB - 1, 2, (b) => {
        parts.push(Buffer.from(b));
      });
      assert.ok(Buffer.concat(parts).equals(data.subarray(4 * MiB - 1, 4 * MiB + 1)));
      await assert.rejects(
        client.getChunked('striped.bin', data.length, 1, () => {}),
        RemoteError,
      );
      // The connection is still usable after a refused range.
      assert.equal((await client.stat('striped.bin')).size, data.length);
    });

    it('pipelines 10,000 small files up and down', async () => {
      const { client } = await connect();
      const src = path.join(local, 'many');
      await mkdir(src, { recursive: true });
      const items = [];
      for (let i = 0; i < 10_000; i++) {
        const f = path.join(src, `f${i}`);
        await writeFile(f, `file number ${i}\n`);
        items.push({ local: f, remote: `many/f${i}` });
      }
      const up = await putFiles(client, items);
      assert.equal(up.filter((r) => r.error).length, 0);
      assert.equal((await readdir(path.join(root, 'many'))).length, 10_000);
      const back = path.join(local, 'back');
      await mkdir(back);
      const down = await getFiles(
        client,
        items.map((it, i) => ({
          remote: it.remote,
          local: path.join(back, `f${i}`),
          size: `file number ${i}\n`.length,
        })),
      );
      assert.equal(down.filter((r) => r.error).length, 0);
      assert.equal(await readFile(path.join(back, 'f9999'), 'utf8'), 'file number 9999\n');
      assert.equal((await readdir(back)).length, 10_000);
    });

    it('fails only the bad request when a Get errors mid-batch, and leaves no temp file', async () => {
      const { client } = await connect();
      await putBuffer(client, 'ok1', Buffer.from('one'));
      await putBuffer(client, 'ok2', Buffer.from('two'));
      const out = path.join(local, 'midbatch');
      await mkdir(out);
      const res = await getFiles(client, [
        { remote: 'ok1', local: path.join(out, 'a'), size: 3 },
        { remote: 'missing', local: path.join(out, 'b'), size: 3 },
        { remote: 'ok2', local: path.join(out, 'c'), size: 3 },
      ]);
      assert.deepEqual(
        res.map((r) => r.error === null),
        [true, false, true],
      );
      assert.match(String(res[1].error?.message), /not-found/);
      assert.deepEqual((await readdir(out)).sort(), ['a', 'c']);
    });

    it('aborts the batch when a Put fails mid-batch and publishes nothing partial', async () => {
      const { client } = await connect();
      await putBuffer(client, 'exists.txt', Buffer.from('keep me'));
      const src = path.join(local, 'pb');
      await mkdir(src, { recursive: true });
      for (const n of ['p1', 'p2', 'p3']) await writeFile(path.join(src, n), randomBytes(1000));
      const res = await putFiles(client, [
        { local: path.join(src, 'p1'), remote: 'pb/p1', overwrite: false },
        { local: path.join(src, 'p2'), remote: 'exists.txt', overwrite: false },
        { local: path.join(src, 'p3'), remote: 'pb/p3', overwrite: false },
      ]);
      assert.equal(res[0].error, null);
      assert.ok(res[1].error instanceof RemoteError);
      assert.match(res[1].error.message, /^exists:/);
      assert.notEqual(res[2].error, null);
      assert.equal(await readFile(path.join(root, 'exists.txt'), 'utf8'), 'keep me');
      assert.ok(client.failure !== null);
      const leftovers = (await readdir(root)).filter((n) => n.includes('bcmr-tmp'));
      assert.deepEqual(leftovers, []);
    });

    it('refuses hostile paths', async () => {
      const { client } = await connect();
      const outside = await tempDir('bcmr-outside-');
      cleanups.push(outside.cleanup);
      await writeFile(path.join(outside.dir, 'secret'), 'secret');
      await symlink(outside.dir, path.join(root, 'escape-link'));
      const hostile = [
        '../x',
        'a/../../x',
        path.join(outside.dir, 'secret'),
        'escape-link/secret',
        'nul\0byte',
      ];
      for (const p of hostile) {
        await assert.rejects(
          client.stat(p),
          (e: Error) => e instanceof RemoteError && /escape/.test(e.message),
          p,
        );
        await assert.rejects(client.mkdir(`${p}-dir`), RemoteError, p);
      }
      await assert.rejects(putBuffer(client, 'escape-link/planted', Buffer.from('x')), /escape/);
      await assert.rejects(stat(path.join(outside.dir, 'planted')));
      await assert.rejects(stat(path.join(outside.dir, 'secret-dir')));
    });
  });
}
