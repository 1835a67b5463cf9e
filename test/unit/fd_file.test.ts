/** FdFile: a close() during a pool write must not free the descriptor number under it. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FdFile } from '../../src/util/fd_file.js';
import { WriteBatch } from '../../src/util/write_batch.js';
import { unhandledRejectionsOnce } from '../helpers/unhandled.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bcmr-fd-'));
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('close() while a pool write runs closes the descriptor only after the write', async () => {
  const p = path.join(dir, 'a');
  const f = FdFile.open(p, 'w');
  const data = Buffer.alloc(8 << 20, 7);
  const write = f.writev([data.subarray(0, 4 << 20), data.subarray(4 << 20)], 0);
  f.close();
  // Still open: a descriptor opened now must not get the same number.
  const other = fs.openSync(p, 'r');
  assert.notEqual(other, f.fd);
  fs.closeSync(other);
  await write;
  assert.equal(fs.statSync(p).size, data.length);
  assert.throws(() => fs.fstatSync(f.fd), { code: 'EBADF' });
  await assert.rejects(f.writev([data], 0), /already closed/);
});

test('a failed batch write nobody waits for is not an unhandled rejection', async () => {
  const p = path.join(dir, 'b');
  fs.writeFileSync(p, '');
  const f = FdFile.open(p, 'r'); // read-only: the pool write fails with EBADF
  const batch = new WriteBatch(f, 0);
  await batch.add(Buffer.alloc(2 << 20));
  f.close();
  // close() waits for the pool write: the descriptor is gone once the write has failed.
  const closed = () => {
    try {
      fs.fstatSync(f.fd);
      return false;
    } catch {
      return true;
    }
  };
  assert.deepEqual(await unhandledRejectionsOnce(closed), []);
  await assert.rejects(batch.settle(), { code: 'EBADF' });
});
