/**
 * Reads into reused memory (transport/slab_pool.ts): a slab goes back to the pool only once
 * every view of it is released, it does go back (or the pool does nothing), and a real
 * `bcmr serve` reading its stdin this way stores exactly what was sent while every returned
 * slab is poisoned (BCMR_SLAB_POISON=1: a byte used after its release would corrupt a file).
 */
import '../helpers/isolate.js';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { blake3Hex } from '../../src/codec/hash.js';
import { encodeFrame } from '../../src/protocol/codec.js';
import { MessageReader } from '../../src/protocol/message_reader.js';
import { pooledInput, SLAB_BYTES, SlabPool } from '../../src/transport/slab_pool.js';
import { mulberry32 } from '../helpers/cutting_relay.js';
import { connectSpawned, getBuffer, putBuffer, tempDir } from '../helpers/serve.js';

const SEED = Number(process.env.BCMR_TEST_SEED ?? Date.now() % 1e9);

/** Bytes of `n` from a seeded generator (incompressible), or a repeated pattern (compressible). */
function content(n: number, random: () => number, compressible: boolean): Buffer {
  const b = Buffer.allocUnsafe(n);
  if (compressible) for (let i = 0; i < n; i++) b[i] = (i >> 6) & 0xff;
  else for (let i = 0; i < n; i++) b[i] = (random() * 256) | 0;
  return b;
}

describe('SlabPool', () => {
  it('takes a slab back only when the read and every tracked view are done', () => {
    const pool = new SlabPool();
    const slab = pool.filled(pool.take(), 100);
    pool.readDone(slab.subarray(0, 50)); // a piece of the read is not the read
    const a = slab.subarray(0, 10);
    const b = slab.subarray(10, 20);
    pool.track(a);
    pool.track(b);
    pool.readDone(slab);
    pool.release(a);
    pool.release(a); // a second release of one view counts once
    assert.notEqual(pool.take().buffer, slab.buffer, 'reused while a view was held');
    pool.release(b);
    assert.equal(pool.take().buffer, slab.buffer, 'not reused once every view was released');
    assert.equal(pool.stats.reused, 1);
  });

  it('never takes back a slab a kept view refers to, and ignores memory it did not give', () => {
    const pool = new SlabPool();
    const slab = pool.filled(pool.take(), 100);
    pool.lose(slab.subarray(0, 4));
    pool.readDone(slab);
    assert.notEqual(pool.take().buffer, slab.buffer);
    const other = Buffer.alloc(16);
    pool.track(other);
    pool.release(other);
    pool.readDone(other);
    assert.equal(pool.stats.reused, 0);
  });

  it('reads a real pipe into a few slabs, reused, in order', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const fifo = path.join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
      const random = mulberry32(SEED);
      const data = content(24 << 20, random, false);
      writeFileSync(path.join(dir, 'data'), data);
      // cat opens the FIFO by itself: our open below blocks until it does.
      spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', path.join(dir, 'data'), fifo], { stdio: 'inherit' });
      const pool = new SlabPool();
      const got: Buffer[] = [];
      for await (const chunk of pooledInput(openSync(fifo, 'r'), pool)) {
        got.push(Buffer.from(chunk));
        pool.readDone(chunk);
      }
      assert.ok(Buffer.concat(got).equals(data), `seed ${SEED}: bytes differ`);
      assert.ok(pool.stats.made <= 4, `made ${pool.stats.made} slabs of ${SLAB_BYTES} for a 24 MiB read`);
      assert.ok(pool.stats.reused > 100, `reused ${pool.stats.reused}`);
    } finally {
      await cleanup();
    }
  });
});

describe('MessageReader over reused memory', () => {
  it('holds a chunk while its Data pieces wait, gives it back once released, and never for HaveBlocks', async () => {
    const pool = new SlabPool();
    const stream = Buffer.concat([
      encodeFrame({ type: 'Data', data: Buffer.alloc(1000, 7) }),
      encodeFrame({ type: 'HaveBlocks', blockSize: 4 << 20, hashes: Buffer.alloc(32, 1) }),
    ]);
    // Two chunks, each in a slab of the pool: the Data frame, then the HaveBlocks frame.
    const dataEnd = 4 + 5 + 1000;
    const chunks = [stream.subarray(0, dataEnd), stream.subarray(dataEnd)].map((part) => {
      const slab = pool.take();
      part.copy(slab);
      return pool.filled(slab, part.length);
    });
    const reader = new MessageReader(
      (async function* () {
        yield* chunks;
      })(),
      { splitData: true, memory: pool },
    );
    const data = await reader.next();
    const have = await reader.next();
    assert.equal(data?.type, 'Data');
    assert.equal(have?.type, 'HaveBlocks');
    assert.equal(await reader.next(), null);
    const before = pool.stats.reused;
    pool.take(); // a new slab: the Data chunk's is still held
    assert.equal(pool.stats.reused, before);
    if (data?.type === 'Data') reader.release(data.data);
    assert.equal(pool.take().buffer, chunks[0].buffer, 'the Data chunk came back once released');
    assert.notEqual(pool.take().buffer, chunks[1].buffer, 'the HaveBlocks chunk never comes back');
  });
});

describe('bcmr serve reading its stdin into poisoned reused memory', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ dir: root, cleanup } = await tempDir());
  });
  after(() => cleanup());

  it('stores every Put and PutChunked byte as sent, raw and compressed, many files at once', async () => {
    const random = mulberry32(SEED);
    const { client, exitCode } = await connectSpawned(root, {}, { BCMR_SLAB_POISON: '1' });
    const files = Array.from({ length: 40 }, (_, i) => ({
      name: `f${i}.bin`,
      data: content(
        i % 10 === 0 ? (9 << 20) + (i << 10) : Math.floor(random() * 300_000),
        random,
        i % 3 === 0,
      ),
    }));
    const hashes = await Promise.all(files.map((f) => putBuffer(client, f.name, f.data)));
    for (const [i, f] of files.entries()) {
      assert.ok(readFileSync(path.join(root, f.name)).equals(f.data), `seed ${SEED}: ${f.name} differs`);
      assert.equal(hashes[i], blake3Hex(f.data), `seed ${SEED}: ${f.name}'s Ok hash`);
    }
    const part = content(6 << 20, random, false);
    await client.truncate('chunked.bin', part.length);
    await client.putChunked('chunked.bin', 0, part.length, async (emit) => {
      for (let o = 0; o < part.length; o += 1 << 20) await emit(part.subarray(o, o + (1 << 20)));
    });
    assert.ok(readFileSync(path.join(root, 'chunked.bin')).equals(part), `seed ${SEED}: PutChunked differs`);
    const back = await getBuffer(client, files[0].name);
    assert.ok(back.data.equals(files[0].data));
    await client.close();
    assert.equal(await exitCode, 0);
  });
});
