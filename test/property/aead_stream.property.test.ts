/**
 * The direct plane's record streams: the sealer's records are PROTOCOL.md's vectors, any
 * frames cut anywhere come back out of the opener unchanged, and a flipped bit, a cut inside
 * a record or a record that is not one frame is a ProtocolError with nothing released.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AeadError, ProtocolError } from '../../src/errors.js';
import { Direction, type DirectionId } from '../../src/protocol/aead.js';
import { RecordOpener, RecordSealer } from '../../src/transport/aead_stream.js';

const key = Buffer.alloc(32, 0x42);
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function frame(type: number, body: Uint8Array): Buffer {
  const f = Buffer.alloc(5 + body.length);
  f.writeUInt32LE(1 + body.length, 0);
  f[4] = type;
  f.set(body, 5);
  return f;
}

/** Feeds `chunks` to a transform; resolves with everything it output, or rejects. */
function through(t: RecordSealer | RecordOpener, chunks: Uint8Array[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    t.on('data', (b: Buffer) => out.push(Buffer.from(b)));
    t.on('error', reject);
    t.on('end', () => resolve(Buffer.concat(out)));
    for (const c of chunks) t.write(Buffer.from(c));
    t.end();
  });
}

/** Cuts `buf` at the given fractions. */
function cut(buf: Buffer, points: number[]): Buffer[] {
  const at = [...new Set(points.map((p) => Math.floor(p * buf.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...at, buf.length]) {
    if (p > prev) out.push(buf.subarray(prev, p));
    prev = p;
  }
  return out;
}

describe('AEAD record streams', () => {
  it('seal and open the PROTOCOL.md vectors (server->client #0, client->server #1)', async () => {
    const s2c = await through(new RecordSealer(key, Direction.serverToClient, 0), [hex('02 00 00 00 82 00')]);
    assert.equal(
      s2c.toString('hex'),
      hex('16000000e24b3a3cdecf20fbe2ee9688ff77e3803c35cf4aa1d2').toString('hex'),
    );
    // The second Done sealed client->server is record #1.
    const c2s = await through(new RecordSealer(key, Direction.clientToServer, 0), [
      hex('01 00 00 00 09'),
      hex('01 00 00 00 09'),
    ]);
    assert.equal(
      c2s.subarray(c2s.length - 25).toString('hex'),
      hex('150000002a16fbb4a081ea5638594b8d17629c270c2fe71c86').toString('hex'),
    );
    // And they open: record #0 then the vector record #1; one flipped bit in it is refused.
    const vector = hex('150000002a16fbb4a081ea5638594b8d17629c270c2fe71c86');
    const first = c2s.subarray(0, c2s.length - 25);
    const opened = await through(new RecordOpener(key, Direction.clientToServer, 0), [first, vector]);
    assert.equal(opened.toString('hex'), '01000000090100000009');
    const bad = Buffer.from(vector);
    bad[7] ^= 1;
    await assert.rejects(
      through(new RecordOpener(key, Direction.clientToServer, 0), [first, bad]),
      AeadError,
    );
  });

  it('round-trips any frames cut anywhere, after plain handshake frames', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 3000 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
        fc.integer({ min: 0, max: 2 }),
        async (bodies, cutIn, cutMid, plain) => {
          const dir: DirectionId = Direction.clientToServer;
          const plainText = Buffer.concat(bodies.map((b) => frame(0x84, b)));
          const sealed = await through(new RecordSealer(key, dir, plain), cut(plainText, cutIn));
          const opened = await through(new RecordOpener(key, dir, plain), cut(sealed, cutMid));
          assert.ok(opened.equals(plainText));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('refuses a flipped bit anywhere in a record, releasing nothing of it', async () => {
    const plainText = frame(0x84, randomBytes(5000));
    const sealed = await through(new RecordSealer(key, Direction.serverToClient, 0), [plainText]);
    for (const at of [0, 4, 5, 100, sealed.length - 17, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[at] ^= 0x01;
      const opener = new RecordOpener(key, Direction.serverToClient, 0);
      let released = 0;
      opener.on('data', (b: Buffer) => (released += b.length));
      await assert.rejects(through(opener, [bad]), ProtocolError);
      assert.equal(released, 0, `flip at ${at}`);
    }
  });

  it('refuses a record from the other direction or out of order (replay)', async () => {
    const sealer = new RecordSealer(key, Direction.clientToServer, 0);
    const two = await through(sealer, [frame(0x09, new Uint8Array(0)), frame(0x09, new Uint8Array(0))]);
    const first = two.subarray(0, two.length / 2);
    await assert.rejects(through(new RecordOpener(key, Direction.serverToClient, 0), [first]), AeadError);
    await assert.rejects(
      through(new RecordOpener(key, Direction.clientToServer, 0), [first, first]),
      AeadError,
    );
  });

  it('a stream cut inside a record is truncation', async () => {
    const sealed = await through(new RecordSealer(key, Direction.serverToClient, 0), [
      frame(0x84, randomBytes(100)),
    ]);
    await assert.rejects(
      through(new RecordOpener(key, Direction.serverToClient, 0), [sealed.subarray(0, sealed.length - 3)]),
      /cut inside a record/,
    );
  });

  it('refuses records longer than 16 MiB + 16 before reading them', async () => {
    const header = Buffer.alloc(4);
    header.writeUInt32LE(16 * 1024 * 1024 + 16 + 1, 0);
    await assert.rejects(through(new RecordOpener(key, Direction.serverToClient, 0), [header]), {
      name: 'ProtocolError',
    });
  });
});
