/** The pinned runtime is what runs the tests (npm scripts put node_modules/.bin first). */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import zlib from 'node:zlib';

it('runs on Node 24 or newer, with zstd in node:zlib', () => {
  const major = Number(process.versions.node.split('.')[0]);
  assert.ok(major >= 24, `Node ${process.versions.node} is older than 24`);
  assert.equal(typeof zlib.zstdCompressSync, 'function');
});
