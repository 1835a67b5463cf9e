/** Property tests: round trips of every message type, split feeds, and hostile byte streams. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ProtocolError } from '../../src/errors.js';
import { ByteWriter } from '../../src/protocol/byte_writer.js';
import { encodeMessage } from '../../src/protocol/codec.js';
import { FrameDecoder } from '../../src/protocol/frame_decoder.js';
import type { Message } from '../../src/protocol/messages.js';
import { normalise } from '../helpers/normalise.js';

const u64 = fc.maxSafeNat();
const i64 = fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER });
const str = fc.string({ unit: 'binary', maxLength: 40 });
const u8 = fc.integer({ min: 0, max: 255 });
const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const hex = fc.option(fc.stringMatching(/^[0-9a-f]{64}$/), { nil: null });
const block = fc.uint8Array({ maxLength: 2048 });

type Of<K extends Message['type']> = Extract<Message, { type: K }>;
const pathMsg = <K extends 'List' | 'Stat' | 'Mkdir' | 'Resume'>(type: K) =>
  fc.record({ type: fc.constant(type), path: str }) as fc.Arbitrary<Of<K>>;
const chunked = <K extends 'PutChunked' | 'GetChunked'>(type: K) =>
  fc.record({ type: fc.constant(type), path: str, offset: u64, length: u64 }) as fc.Arbitrary<Of<K>>;

/**
 * One arbitrary per message type, keyed by type: a message type added to `Message` without an
 * arbitrary here fails to compile, so every type is always in the round trip.
 */
const ARBITRARIES: { [K in Message['type']]: fc.Arbitrary<Of<K>> } = {
  Hello: fc.record({ type: fc.constant('Hello' as const), version: u8, caps: u8 }),
  Welcome: fc.record({ type: fc.constant('Welcome' as const), version: u8, caps: u8 }),
  List: pathMsg('List'),
  Stat: pathMsg('Stat'),
  Mkdir: pathMsg('Mkdir'),
  Resume: pathMsg('Resume'),
  Hash: fc.record({
    type: fc.constant('Hash' as const),
    path: str,
    offset: u64,
    limit: fc.option(u64, { nil: null }),
  }),
  Get: fc.record({ type: fc.constant('Get' as const), path: str, offset: u64 }),
  Put: fc.record({
    type: fc.constant('Put' as const),
    path: str,
    size: u64,
    offset: u64,
    overwrite: fc.boolean(),
  }),
  Done: fc.constant({ type: 'Done' as const }),
  OpenDirectChannel: fc.constant({ type: 'OpenDirectChannel' as const }),
  HaveBlocks: fc.record({
    type: fc.constant('HaveBlocks' as const),
    blockSize: fc.nat({ max: 0xffffffff }),
    hashes: fc.array(bytes32, { maxLength: 5 }).map((a) => new Uint8Array(Buffer.concat(a))),
  }),
  AuthHello: fc.record({ type: fc.constant('AuthHello' as const), mac: bytes32 }),
  AuthChallenge: fc.record({ type: fc.constant('AuthChallenge' as const), nonce: bytes32 }),
  PutChunked: chunked('PutChunked'),
  GetChunked: chunked('GetChunked'),
  Truncate: fc.record({ type: fc.constant('Truncate' as const), path: str, size: u64 }),
  Ok: fc.record({ type: fc.constant('Ok' as const), hash: hex }),
  Error: fc.record({ type: fc.constant('Error' as const), message: str }),
  Data: fc.record({ type: fc.constant('Data' as const), data: block }),
  StatResponse: fc.record({
    type: fc.constant('StatResponse' as const),
    size: u64,
    mtime: i64,
    isDir: fc.boolean(),
  }),
  HashResponse: fc.record({ type: fc.constant('HashResponse' as const), hash: str }),
  ListResponse: fc.record({
    type: fc.constant('ListResponse' as const),
    entries: fc.array(fc.record({ path: str, size: u64, mtime: i64, isDir: fc.boolean() }), { maxLength: 8 }),
  }),
  ResumeResponse: fc.record({ type: fc.constant('ResumeResponse' as const), size: u64, blockHash: hex }),
  DataCompressed: fc.record({
    type: fc.constant('DataCompressed' as const),
    algo: fc.constantFrom(1 as const, 2 as const),
    originalSize: fc.integer({ min: 1, max: 4 * 1024 * 1024 }),
    payload: block,
  }),
  MissingBlocks: fc.record({
    type: fc.constant('MissingBlocks' as const),
    bitmap: fc.uint8Array({ maxLength: 64 }),
  }),
  DirectChannelReady: fc.record({
    type: fc.constant('DirectChannelReady' as const),
    addr: str,
    sessionKey: bytes32,
  }),
};

const message: fc.Arbitrary<Message> = fc.oneof(...(Object.values(ARBITRARIES) as fc.Arbitrary<Message>[]));

function encodeAll(ms: Message[]): Buffer {
  const w = new ByteWriter();
  for (const m of ms) encodeMessage(w, m);
  return Buffer.concat(w.take());
}

function feed(bytes: Uint8Array, cuts: number[], splitData = false): Message[] {
  const out: Message[] = [];
  const d = new FrameDecoder((m) => out.push(m), splitData);
  let prev = 0;
  for (const c of [...cuts.map((x) => x % (bytes.length + 1))].sort((a, b) => a - b)) {
    d.push(bytes.subarray(prev, c));
    prev = c;
  }
  d.push(bytes.subarray(prev));
  d.end();
  return out;
}

describe('Codec properties', () => {
  it('decode(encode(m)) == m for every message type', () => {
    fc.assert(
      fc.property(message, (m) => {
        assert.deepEqual(normalise(feed(encodeAll([m]), [])), normalise([m]));
      }),
      { numRuns: 2000 },
    );
  });

  it('decodes the same messages at any split of the stream', () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 10 }), (ms, cuts) => {
        assert.deepEqual(normalise(feed(encodeAll(ms), cuts)), normalise(ms));
      }),
      { numRuns: 500 },
    );
  });

  it('with splitData, Data pieces concatenate to the same bytes and nothing else changes', () => {
    // Adjacent Data messages are merged on both sides: splitting may only cut inside a Data frame.
    const merge = (ms: Message[]): unknown[] => {
      const out: unknown[] = [];
      for (const m of normalise(ms) as Record<string, unknown>[]) {
        const prev = out[out.length - 1] as Record<string, unknown> | undefined;
        if (m.type === 'Data' && prev?.type === 'Data') prev.data = `${prev.data}${String(m.data).slice(6)}`;
        else out.push({ ...m });
      }
      return out.filter(
        (m) =>
          !(
            (m as Record<string, unknown>).type === 'Data' && (m as Record<string, unknown>).data === 'bytes:'
          ),
      );
    };
    fc.assert(
      fc.property(fc.array(message, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 10 }), (ms, cuts) => {
        assert.deepEqual(merge(feed(encodeAll(ms), cuts, true)), merge(ms));
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (b) => {
        try {
          feed(b, [3, 7, 100], true);
        } catch (err) {
          assert.ok(err instanceof ProtocolError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('decodes byte by byte', () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 3 }), (ms) => {
        const bytes = encodeAll(ms);
        const out: Message[] = [];
        const d = new FrameDecoder((m) => out.push(m));
        for (const b of bytes) d.push(Uint8Array.of(b));
        d.end();
        assert.deepEqual(normalise(out), normalise(ms));
      }),
      { numRuns: 200 },
    );
  });

  const onlyProtocolErrors = (bytes: Uint8Array): void => {
    try {
      feed(bytes, []);
    } catch (err) {
      assert.ok(err instanceof ProtocolError, `unexpected ${(err as Error).name}: ${(err as Error).message}`);
    }
  };

  it('random bytes fail only with ProtocolError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), onlyProtocolErrors), { numRuns: 3000 });
  });

  it('mutated valid streams fail only with ProtocolError', () => {
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 4 }),
        fc.array(fc.tuple(fc.nat(), u8), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        (ms, flips, cut) => {
          const bytes = Buffer.from(encodeAll(ms));
          for (const [pos, v] of flips) bytes[pos % bytes.length] = v;
          onlyProtocolErrors(bytes.subarray(0, bytes.length - (cut % 3)));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('rejects a frame over 16 MiB from its header, before allocating it', () => {
    const d = new FrameDecoder(() => {});
    const before = process.memoryUsage().arrayBuffers;
    assert.throws(() => d.push(Uint8Array.of(0x01, 0x00, 0x00, 0x01)), ProtocolError);
    assert.throws(
      () => new FrameDecoder(() => {}).push(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x84)),
      /exceeds/,
    );
    assert.ok(process.memoryUsage().arrayBuffers - before < 1 << 20);
    // Exactly 16 MiB is allowed through to the body check (a Data frame that large is then malformed).
    const ok = new FrameDecoder(() => {});
    ok.push(Uint8Array.of(0x00, 0x00, 0x00, 0x01));
    assert.equal(ok.atBoundary, false);
  });

  it('rejects len 0, unknown types, trailing bytes and EOF inside a frame', () => {
    const bad = ['00 00 00 00', '01 00 00 00 7f', '02 00 00 00 09 00', '03 00 00 00 01'];
    for (const h of bad)
      assert.throws(() => feed(Buffer.from(h.replace(/ /g, ''), 'hex'), []), ProtocolError, h);
  });

  it('rejects Data over 4 MiB and bad DataCompressed headers', () => {
    const w = Buffer.alloc(9);
    w.writeUInt32LE(5 + 4 * 1024 * 1024 + 1, 0);
    w[4] = 0x84;
    w.writeUInt32LE(4 * 1024 * 1024 + 1, 5);
    assert.throws(
      () => new FrameDecoder(() => {}).push(Buffer.concat([w, Buffer.alloc(4 * 1024 * 1024 + 1)])),
      ProtocolError,
    );
    // algo 0, and original_size 0
    for (const body of ['89 00 01 00 00 00 00 00 00 00', '89 02 00 00 00 00 00 00 00 00']) {
      const b = Buffer.from(body.replace(/ /g, ''), 'hex');
      const frame = Buffer.concat([Buffer.from([b.length, 0, 0, 0]), b]);
      assert.throws(() => feed(frame, []), ProtocolError, body);
    }
  });

  it('rejects counts over 1,048,576 and invalid UTF-8', () => {
    const list = Buffer.from('05 00 00 00 87 01 00 10 00'.replace(/ /g, ''), 'hex');
    assert.throws(() => feed(list, []), /count/);
    const stat = Buffer.from('06 00 00 00 03 01 00 00 00 ff'.replace(/ /g, ''), 'hex');
    assert.throws(() => feed(stat, []), /UTF-8/);
  });
});
