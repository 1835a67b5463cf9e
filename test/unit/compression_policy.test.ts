/** The per-connection compression decision (issue 16): raw on links faster than the codec, higher level on slow ones. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeBlock } from '../../src/codec/block.js';
import { CompressionPolicy, decide, WARMUP_BYTES } from '../../src/codec/compression_policy.js';

const codec = { 3: 300e6, 6: 120e6 } as const;
const MiB = 1 << 20;
const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(100_000)).subarray(
  0,
  4 * MiB,
);

describe('decide', () => {
  it('probes and compresses at level 3 while the wire is not measured', () => {
    assert.deepEqual({ ...decide(Number.NaN, codec), why: '' }, { compress: true, level: 3, why: '' });
  });
  it('sends raw when the wire is more than half as fast as the codec (loopback: ssh at 400 MB/s)', () => {
    assert.equal(decide(400e6, codec).compress, false);
    assert.equal(decide(151e6, codec).compress, false);
  });
  it('compresses at level 3 on a link between a quarter of level 6 and half of level 3', () => {
    assert.deepEqual([decide(150e6, codec).compress, decide(150e6, codec).level], [true, 3]);
    assert.deepEqual([decide(31e6, codec).compress, decide(31e6, codec).level], [true, 3]);
  });
  it('takes level 6 where the wire is at most a quarter of level 6 (10 MB/s)', () => {
    assert.deepEqual([decide(10e6, codec).compress, decide(10e6, codec).level], [true, 6]);
    assert.deepEqual([decide(30e6, codec).compress, decide(30e6, codec).level], [true, 6]);
  });
});

describe('CompressionPolicy', () => {
  /** Feeds writes of 4 MiB at `bps` after the warm-up. */
  const feed = (p: CompressionPolicy, bps: number, n: number) => {
    for (let i = 0; i < n; i++) p.recordWrite(4 * MiB, 0, (4 * MiB * 1000) / bps);
  };

  it('ignores the warm-up (the pipe and ssh window take the first MiB at any speed)', () => {
    const p = new CompressionPolicy();
    p.recordWrite(WARMUP_BYTES, 0, 1); // as if 8 MiB went in 1 ms
    assert.equal(p.choose().why, 'wire rate not measured yet');
    feed(p, 10e6, 4);
    assert.deepEqual([p.choose().compress, p.choose().level], [true, 6]);
  });

  it('follows the link when it speeds up, and small writes do not count', () => {
    const p = new CompressionPolicy();
    p.recordWrite(WARMUP_BYTES, 0, 1000);
    feed(p, 10e6, 8);
    for (let i = 0; i < 100; i++) p.recordWrite(4096, 0, 0.001);
    assert.equal(p.choose().compress, true);
    feed(p, 1e9, 12);
    assert.equal(p.choose().compress, false, p.choose().why);
  });

  it('counts bytes queued ahead of a write in its rate', () => {
    const p = new CompressionPolicy();
    p.recordWrite(WARMUP_BYTES, 0, 1000);
    // 4 MiB written behind 60 MiB queued, in 100 ms: 671 MB/s, not 42 MB/s.
    for (let i = 0; i < 4; i++) p.recordWrite(4 * MiB, 60 * MiB, 100);
    assert.equal(p.choose().compress, false, p.choose().why);
  });

  it('a measured fast link sends a compressible block raw; a slow one compresses it', () => {
    const fast = new CompressionPolicy();
    fast.recordWrite(WARMUP_BYTES, 0, 1000);
    feed(fast, 1e9, 4);
    assert.equal(encodeBlock(text, 'zstd', fast).type, 'Data');
    const slow = new CompressionPolicy();
    slow.recordWrite(WARMUP_BYTES, 0, 1000);
    feed(slow, 10e6, 4);
    assert.equal(encodeBlock(text, 'zstd', slow).type, 'DataCompressed');
  });
});
