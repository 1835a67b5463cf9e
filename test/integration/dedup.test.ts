/** Dedup Put: HaveBlocks / MissingBlocks, a repeat upload sends no blocks, a corrupt CAS block is refused. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { blake3Hex, blake3Raw } from '../../src/codec/hash.js';
import { RemoteError } from '../../src/errors.js';
import { Cas } from '../../src/server/cas.js';
import { connectInProcess, tempDir } from '../helpers/serve.js';

const MiB = 1024 * 1024;
let root: string;
let cas: string;
const cleanups: (() => Promise<void>)[] = [];
before(async () => {
  const a = await tempDir();
  const b = await tempDir('bcmr-cas-');
  root = a.dir;
  cas = b.dir;
  cleanups.push(a.cleanup, b.cleanup);
});
after(async () => {
  for (const c of cleanups) await c();
});

const data = randomBytes(18 * MiB + 5);
const blocks: Buffer[] = [];
for (let o = 0; o < data.length; o += 4 * MiB)
  blocks.push(data.subarray(o, Math.min(o + 4 * MiB, data.length)));
const hashes = Buffer.concat(blocks.map((b) => blake3Raw(b)));

async function upload(name: string): Promise<{ hash: string | null; sent: number; skipped: number }> {
  const { client } = await connectInProcess(root, {}, cas);
  let sent = 0;
  try {
    const ticket = await client.beginPut(name, { size: data.length, dedupHashes: hashes }, async (emit) => {
      for (const b of blocks) {
        const r = await emit(b);
        if (r.released !== null || b.length < 256 * 1024) sent++;
      }
    });
    const hash = await ticket.done;
    return { hash, sent, skipped: ticket.skippedBlocks };
  } finally {
    await client.close();
  }
}

it('stores blocks on the first upload and skips all of them on a repeat', async () => {
  const first = await upload('one.bin');
  assert.equal(first.hash, blake3Hex(data));
  assert.equal(first.skipped, 0);
  const second = await upload('two.bin');
  assert.equal(second.hash, blake3Hex(data));
  assert.equal(second.skipped, blocks.length);
  assert.ok((await readFile(path.join(root, 'two.bin'))).equals(data));
});

it('refuses to assemble from a corrupt CAS block and publishes nothing', async () => {
  const store = new Cas(cas);
  const victim = store.blockPath(blake3Hex(blocks[1]));
  await writeFile(victim, Buffer.alloc(4 * MiB));
  await assert.rejects(
    upload('three.bin'),
    (e: Error) => e instanceof RemoteError && /corrupt/.test(e.message),
  );
  assert.deepEqual(
    (await readdir(root)).filter((n) => n.includes('three')),
    [],
  );
  // The corrupt block was dropped, so the next upload sends it again and succeeds.
  const again = await upload('three.bin');
  assert.equal(again.hash, blake3Hex(data));
  assert.equal(again.skipped, blocks.length - 1);
});
