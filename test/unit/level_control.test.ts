/**
 * Compression that sees the wire (codec/level_control.ts): the zstd level climbs while a
 * connection's writes wait on a full pipe, comes down while they do not, decides at most every
 * 200 ms, and every level it picks decodes to the block it was given.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { decodeBlock, encodeBlock } from '../../src/codec/block.js';
import { LEVELS, LevelControl } from '../../src/codec/level_control.js';
import { ZSTD_LEVEL } from '../../src/protocol/constants.js';
import { FrameSink } from '../../src/transport/frame_sink.js';

describe('LevelControl', () => {
  it('climbs one level per 200 ms of mostly waiting, to the top of the ladder and no further', () => {
    const c = new LevelControl(0);
    let waited = 0;
    const seen: number[] = [];
    for (let t = 0; t <= 2000; t += 50) {
      waited += 40; // 80 % of every 50 ms spent waiting
      seen.push(c.next(waited, t));
    }
    assert.equal(seen[0], ZSTD_LEVEL);
    assert.equal(seen.at(-1), LEVELS.at(-1));
    for (let i = 1; i < seen.length; i++)
      assert.ok(
        LEVELS.indexOf(seen[i] as never) - LEVELS.indexOf(seen[i - 1] as never) <= 1,
        'one step at a time',
      );
    // Four 50 ms ticks per decision: the first step comes at 200 ms, not before.
    assert.equal(seen[3], ZSTD_LEVEL);
    assert.equal(seen[4], LEVELS[1]);
  });

  it('comes back down to the base when the writes stop waiting, and holds in between', () => {
    const c = new LevelControl(0);
    let waited = 0;
    let t = 0;
    for (; t <= 1000; t += 100) {
      waited += 90;
      c.next(waited, t);
    }
    const top = c.level;
    assert.ok(top > ZSTD_LEVEL);
    // 30 % waiting: neither the wire nor compression clearly the bottleneck: the level holds.
    for (let i = 0; i < 5; i++) {
      waited += 60;
      t += 200;
      c.next(waited, t);
    }
    assert.equal(c.level, top);
    for (let i = 0; i < 10; i++) {
      t += 200;
      c.next(waited, t);
    }
    assert.equal(c.level, ZSTD_LEVEL);
  });
});

describe('FrameSink compression level', () => {
  const text = Buffer.from('the quick brown fox jumps over the lazy dog, again and again. '.repeat(20_000));

  /** A stream that takes each write after `delayMs`: a slow wire. */
  const wire = (delayMs: number) =>
    new Writable({
      highWaterMark: 1,
      write(_chunk, _enc, cb) {
        if (delayMs === 0) cb();
        else setTimeout(cb, delayMs);
      },
    });

  async function levelAfter(delayMs: number, ms: number): Promise<number> {
    const sink = new FrameSink(wire(delayMs));
    const end = performance.now() + ms;
    while (performance.now() < end) {
      const r = await sink.sendBlock(text.subarray(0, 256 << 10), 'zstd');
      await sink.flush();
      await r.released;
    }
    return sink.zstdLevel;
  }

  it('raises the level over a wire that keeps writes waiting, and keeps the base over one that does not', async () => {
    assert.equal(await levelAfter(20, 1200), LEVELS.at(-1));
    assert.equal(await levelAfter(0, 600), ZSTD_LEVEL);
  });

  it('sends at every level a frame that decodes to the block, smaller the higher the level', () => {
    // Words drawn by a fixed generator: text with structure for the higher levels to find.
    const words = [
      'copy',
      'file',
      'remote',
      'host',
      'block',
      'hash',
      'the',
      'of',
      'and',
      'a',
      'stream',
      'wire',
    ];
    let x = 7;
    const prose = Buffer.from(
      Array.from({ length: 200_000 }, () => {
        x = (x * 1103515245 + 12345) % 2 ** 31;
        return words[x % words.length] + (x % 7 === 0 ? '.\n' : ' ');
      }).join(''),
    );
    const sizes: number[] = [];
    for (const level of LEVELS) {
      const m = encodeBlock(prose, 'zstd', level);
      assert.equal(m.type, 'DataCompressed', `level ${level} did not compress text`);
      if (m.type === 'DataCompressed') sizes.push(m.payload.length);
      assert.ok(Buffer.from(decodeBlock(m)).equals(prose), `level ${level} does not round-trip`);
    }
    assert.ok(
      (sizes.at(-1) ?? Number.POSITIVE_INFINITY) < sizes[0] * 0.9,
      `top level ${sizes.at(-1)} B, base ${sizes[0]} B`,
    );
  });
});
