/** FrameSink when the peer is gone: failures reach whoever awaits, and never crash the process. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { FrameSink } from '../../src/transport/frame_sink.js';
import { unhandledRejectionsWithin } from '../helpers/unhandled.js';

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
  assert.deepEqual(await unhandledRejectionsWithin(100), []);
  await assert.rejects(later, /EPIPE/);
});
