/** Block compression policy: 95 % rule, sampling of large blocks, exact round trips. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { decodeBlock, encodeBlock, entropyBits, SAMPLE_BYTES } from '../../src/codec/block.js';

const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(100_000)).subarray(
  0,
  4 << 20,
);

for (const codec of ['zstd', 'lz4'] as const) {
  test(`${codec}: text compresses, random travels raw, both round-trip`, () => {
    const t = encodeBlock(text, codec);
    assert.equal(t.type, 'DataCompressed');
    assert.ok(Buffer.from(decodeBlock(t)).equals(text));
    const r = randomBytes(4 << 20);
    const rr = encodeBlock(r, codec);
    assert.equal(rr.type, 'Data');
    assert.ok(Buffer.from(decodeBlock(rr)).equals(r));
  });

  test(`${codec}: a large block is judged by its first ${SAMPLE_BYTES / 1024} KiB`, () => {
    // Incompressible head, compressible rest: the sample says raw, and raw is always valid.
    const mixed = Buffer.concat([randomBytes(SAMPLE_BYTES), text.subarray(SAMPLE_BYTES)]);
    assert.equal(encodeBlock(mixed, codec).type, 'Data');
    // Small blocks are compressed outright, no sampling.
    const small = Buffer.concat([randomBytes(1000), text.subarray(0, 7000)]);
    assert.equal(encodeBlock(small, codec).type, 'DataCompressed');
    // A 64 KiB block is judged by its first 4 KiB.
    const head = Buffer.concat([randomBytes(4096), text.subarray(0, 60 * 1024)]);
    assert.equal(encodeBlock(head, codec).type, 'Data');
    assert.equal(encodeBlock(text.subarray(0, 64 * 1024), codec).type, 'DataCompressed');
  });
}

test('base64 text passes the probe on entropy and compresses with zstd', () => {
  const b64 = Buffer.from(randomBytes(3 << 20).toString('base64'));
  const m = encodeBlock(b64.subarray(0, 4 << 20), 'zstd');
  assert.equal(m.type, 'DataCompressed');
  assert.ok(entropyBits(randomBytes(65536)) > 7.9);
  assert.ok(entropyBits(b64.subarray(0, 65536)) < 6.1);
});

test('none and empty blocks are raw', () => {
  assert.equal(encodeBlock(text, 'none').type, 'Data');
  assert.equal(encodeBlock(new Uint8Array(0), 'zstd').type, 'Data');
});
