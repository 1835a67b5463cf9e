/**
 * FrameSink when the peer is gone: failures reach whoever awaits, and never crash the process;
 * and its reuse of write slabs.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeFrame } from '../../src/protocol/codec.js';
import type { Message } from '../../src/protocol/messages.js';
import { FrameSink } from '../../src/transport/frame_sink.js';
import { unhandledRejectionsOnce } from '../helpers/unhandled.js';

test('a flush after the stream failed rejects, and is not an unhandled rejection meanwhile', async () => {
  const dead = new Writable({
    write(_chunk, _enc, cb) {
      cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    },
  });
  const sink = new FrameSink(dead);
  sink.send({ type: 'Done' });
  await assert.rejects(sink.flush(), /EPIPE/);
  // As a block's release: taken now, awaited only later.
  sink.send({ type: 'Done' });
  const later = sink.flush();
  // The stream failed on the first write: `later` fails within a tick of the loop.
  assert.deepEqual(await unhandledRejectionsOnce(() => dead.destroyed), []);
  await assert.rejects(later, /EPIPE/);
});

test('slabs reused after a write never change bytes a slow stream has not taken yet (seeded, fast-check prints the seed)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ size: fc.integer({ min: 0, max: 300 * 1024 }), flush: fc.boolean() }), {
        minLength: 1,
        maxLength: 60,
      }),
      async (frames) => {
        // Like a full pipe: the stream keeps the views and copies them only when it gets to them.
        const got: Buffer[] = [];
        const slow = new Writable({
          write(chunk: Buffer, _enc, cb) {
            setImmediate(() => {
              got.push(Buffer.from(chunk));
              cb();
            });
          },
        });
        const sink = new FrameSink(slow);
        const want: Buffer[] = [];
        const flushes: Promise<void>[] = [];
        for (const [i, f] of frames.entries()) {
          // Every frame's bytes differ from its neighbours', so a slab reused early shows.
          const m: Message = { type: 'Data', data: Buffer.alloc(f.size, i + 1) };
          want.push(encodeFrame(m));
          sink.send(m);
          if (f.flush) flushes.push(sink.flush());
        }
        flushes.push(sink.flush());
        await Promise.all(flushes);
        assert.ok(
          Buffer.concat(got).equals(Buffer.concat(want)),
          'the stream got other bytes than were sent',
        );
      },
    ),
    { numRuns: 60 },
  );
});
