/** A client that dies mid-Put leaves nothing under the final name and no temp file. */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { after, before, it } from 'node:test';
import { ProtocolError } from '../../src/errors.js';
import { serveSession } from '../../src/server/session.js';
import { FrameSink } from '../../src/transport/frame_sink.js';
import { tempDir } from '../helpers/serve.js';

let root: string;
let cleanup: () => Promise<void>;
before(async () => {
  ({ dir: root, cleanup } = await tempDir());
});
after(() => cleanup());

for (const cut of ['between frames', 'inside a frame'] as const) {
  it(`removes the temp file when the stream ends ${cut} during a Put`, async () => {
    const c2s = new PassThrough();
    const s2c = new PassThrough();
    s2c.resume();
    const done = serveSession(c2s, s2c, { root }).then(
      () => null,
      (e: Error) => e,
    );
    const sink = new FrameSink(c2s);
    sink.send({ type: 'Hello', version: 2, caps: 0x80 });
    sink.send({
      type: 'Put',
      path: `dir/victim-${cut.length}.bin`,
      size: 1 << 20,
      offset: 0,
      overwrite: true,
    });
    sink.send({ type: 'Data', data: Buffer.alloc(300_000, 1) });
    await sink.flush();
    if (cut === 'inside a frame') c2s.write(Buffer.from([0x10, 0, 0, 0, 0x84]));
    c2s.end();
    const err = await done;
    assert.ok(err instanceof ProtocolError, String(err));
    assert.deepEqual(await readdir(`${root}/dir`), []);
  });
}

it('answers a short Put, a long Put and an early PutChunked Done with one Error each and stays in step', async () => {
  const { MessageReader } = await import('../../src/protocol/message_reader.js');
  const c2s = new PassThrough();
  const s2c = new PassThrough();
  const done = serveSession(c2s, s2c, { root });
  const sink = new FrameSink(c2s);
  const reader = new MessageReader(s2c);
  sink.send({ type: 'Hello', version: 2, caps: 0x80 });
  sink.send({ type: 'Put', path: 'short.bin', size: 10, offset: 0, overwrite: true });
  sink.send({ type: 'Data', data: Buffer.alloc(4) });
  sink.send({ type: 'Done' });
  sink.send({ type: 'Put', path: 'long.bin', size: 2, offset: 0, overwrite: true });
  sink.send({ type: 'Data', data: Buffer.alloc(4) });
  sink.send({ type: 'Data', data: Buffer.alloc(4) });
  sink.send({ type: 'Done' });
  sink.send({ type: 'PutChunked', path: 'chunk.bin', offset: 0, length: 8 });
  sink.send({ type: 'Data', data: Buffer.alloc(4) });
  sink.send({ type: 'Done' });
  sink.send({ type: 'Stat', path: '.' });
  await sink.end();
  const types: string[] = [];
  for (let m = await reader.next(); m !== null; m = await reader.next()) {
    types.push(m.type === 'Error' ? `Error:${m.message.split(':')[0]}` : m.type);
  }
  assert.deepEqual(types, ['Welcome', 'Error:io', 'Error:io', 'Error:io', 'StatResponse']);
  await done;
  const names = await readdir(root);
  assert.ok(!names.includes('short.bin') && !names.includes('long.bin'));
  assert.deepEqual(
    names.filter((n) => n.includes('bcmr-tmp')),
    [],
  );
});
