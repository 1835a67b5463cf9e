/** Connections sharing one WorkQueue: each takes files while it has room, none is idle. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { getFiles } from '../../src/client/serve/get_files.js';
import { putFiles } from '../../src/client/serve/put_files.js';
import type { GetItem, PutItem } from '../../src/core/items.js';
import { WorkQueue } from '../../src/core/work_queue.js';
import { connectInProcess, tempDir } from '../helpers/serve.js';

test('WorkQueue: take in order, put back first, drain the rest', () => {
  const q = new WorkQueue([1, 2, 3, 4]);
  assert.equal(q.take(), 1);
  q.putBack(1);
  assert.equal(q.remaining, 4);
  assert.equal(q.take(), 1);
  assert.equal(q.take(), 2);
  assert.deepEqual(q.drain(), [3, 4]);
  assert.equal(q.take(), undefined);
});

test('three connections share uploads and downloads of one queue', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const src = path.join(dir, 'src');
    const dst = path.join(dir, 'dst');
    const back = path.join(dir, 'back');
    for (const d of [src, dst, back]) fs.mkdirSync(d);
    const puts: PutItem[] = [];
    for (let i = 0; i < 240; i++) {
      fs.writeFileSync(path.join(src, `f${i}`), Buffer.alloc(200_000, i));
      puts.push({ local: path.join(src, `f${i}`), remote: path.join(dst, `f${i}`) });
    }
    const conns = await Promise.all([0, 1, 2].map(() => connectInProcess(dir)));
    const upQueue = new WorkQueue(puts);
    const up = await Promise.all(conns.map(({ client }) => putFiles(client, upQueue)));
    assert.deepEqual(
      up.map((r) => r.every((x) => x.error === null)),
      [true, true, true],
    );
    assert.equal(up.flat().length, 240);
    for (const r of up) assert.ok(r.length > 0, `per-connection uploads: ${up.map((x) => x.length)}`);

    const gets: GetItem[] = puts.map((p) => ({
      remote: p.remote,
      local: path.join(back, path.basename(p.remote)),
      size: 200_000,
    }));
    const downQueue = new WorkQueue(gets);
    const down = await Promise.all(conns.map(({ client }) => getFiles(client, downQueue)));
    assert.equal(down.flat().filter((r) => r.error === null).length, 240);
    for (const r of down) assert.ok(r.length > 0, `per-connection downloads: ${down.map((x) => x.length)}`);
    assert.equal(fs.readdirSync(back).length, 240);
    await Promise.all(conns.map(({ client }) => client.close()));
  } finally {
    await cleanup();
  }
});
