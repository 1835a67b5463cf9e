/** Every test vector of PROTOCOL.md section 18, encoded and decoded byte for byte. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  blake3Hex,
  digestAndRecycle,
  directMac,
  nativeImpl,
  portableImpl,
  takeHasher,
} from '../../src/codec/hash.js';
import { encodeFrame } from '../../src/protocol/codec.js';
import { FrameDecoder } from '../../src/protocol/frame_decoder.js';
import type { Message } from '../../src/protocol/messages.js';
import { normalise } from '../helpers/normalise.js';

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

const encode = encodeFrame;

function decodeAll(bytes: Uint8Array): Message[] {
  const out: Message[] = [];
  const d = new FrameDecoder((m) => out.push(m));
  d.push(bytes);
  d.end();
  return out;
}

const rep = (byte: number, n = 32) => new Uint8Array(n).fill(byte);
const hashHello = 'ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f';

const VECTORS: [string, Message, Buffer][] = [
  ['Hello{2, caps 0x1f}', { type: 'Hello', version: 2, caps: 0x1f }, hex('03 00 00 00 01 02 1f')],
  ['Welcome{2, caps 0x03}', { type: 'Welcome', version: 2, caps: 0x03 }, hex('03 00 00 00 81 02 03')],
  [
    'Stat{"a/b.txt"}',
    { type: 'Stat', path: 'a/b.txt' },
    hex('0c 00 00 00 03 07 00 00 00 61 2f 62 2e 74 78 74'),
  ],
  [
    'StatResponse{1048576, 1700000000, false}',
    { type: 'StatResponse', size: 1048576, mtime: 1700000000, isDir: false },
    hex('12 00 00 00 85 00 00 10 00 00 00 00 00 00 f1 53 65 00 00 00 00 00'),
  ],
  ['List{"dir"}', { type: 'List', path: 'dir' }, hex('08 00 00 00 02 03 00 00 00 64 69 72')],
  [
    'ListResponse',
    {
      type: 'ListResponse',
      entries: [
        { path: 'x', size: 3, mtime: 5, isDir: false },
        { path: 'd', size: 4096, mtime: 6, isDir: true },
      ],
    },
    hex(
      '31 00 00 00 87 02 00 00 00 01 00 00 00 78 03 00 00 00 00 00 00 00 05 00 00 00 00 00 00 00 00 01 00 00 00 64 00 10 00 00 00 00 00 00 06 00 00 00 00 00 00 00 01',
    ),
  ],
  [
    'Hash{"f", 0, None}',
    { type: 'Hash', path: 'f', offset: 0, limit: null },
    hex('0f 00 00 00 04 01 00 00 00 66 00 00 00 00 00 00 00 00 00'),
  ],
  [
    'Hash{"f", 4096, Some(100)}',
    { type: 'Hash', path: 'f', offset: 4096, limit: 100 },
    hex('17 00 00 00 04 01 00 00 00 66 00 10 00 00 00 00 00 00 01 64 00 00 00 00 00 00 00'),
  ],
  [
    'Get{"f", 0}',
    { type: 'Get', path: 'f', offset: 0 },
    hex('0e 00 00 00 05 01 00 00 00 66 00 00 00 00 00 00 00 00'),
  ],
  [
    'Put{"up.bin", 5, 0, overwrite}',
    { type: 'Put', path: 'up.bin', size: 5, offset: 0, overwrite: true },
    hex('1c 00 00 00 06 06 00 00 00 75 70 2e 62 69 6e 05 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01'),
  ],
  [
    'Data{"hello"}',
    { type: 'Data', data: Buffer.from('hello') },
    hex('0a 00 00 00 84 05 00 00 00 68 65 6c 6c 6f'),
  ],
  ['Done', { type: 'Done' }, hex('01 00 00 00 09')],
  ['Ok{None}', { type: 'Ok', hash: null }, hex('02 00 00 00 82 00')],
  [
    'Error{"no such file"}',
    { type: 'Error', message: 'no such file' },
    hex('11 00 00 00 83 0c 00 00 00 6e 6f 20 73 75 63 68 20 66 69 6c 65'),
  ],
  ['Mkdir{"d/e"}', { type: 'Mkdir', path: 'd/e' }, hex('08 00 00 00 07 03 00 00 00 64 2f 65')],
  ['Resume{"f"}', { type: 'Resume', path: 'f' }, hex('06 00 00 00 08 01 00 00 00 66')],
  [
    'ResumeResponse{0, None}',
    { type: 'ResumeResponse', size: 0, blockHash: null },
    hex('0a 00 00 00 88 00 00 00 00 00 00 00 00 00'),
  ],
  [
    'Truncate{"f", 10}',
    { type: 'Truncate', path: 'f', size: 10 },
    hex('0e 00 00 00 0f 01 00 00 00 66 0a 00 00 00 00 00 00 00'),
  ],
  [
    'PutChunked{"f", 4194304, 4194304}',
    { type: 'PutChunked', path: 'f', offset: 4194304, length: 4194304 },
    hex('16 00 00 00 0d 01 00 00 00 66 00 00 40 00 00 00 00 00 00 00 40 00 00 00 00 00'),
  ],
  [
    'GetChunked{"f", 0, 1}',
    { type: 'GetChunked', path: 'f', offset: 0, length: 1 },
    hex('16 00 00 00 0e 01 00 00 00 66 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00'),
  ],
  [
    'HaveBlocks{4194304, [ab x32, ab x32]}',
    { type: 'HaveBlocks', blockSize: 4194304, hashes: rep(0xab, 64) },
    Buffer.concat([hex('49 00 00 00 0a 00 00 40 00 02 00 00 00'), rep(0xab, 64)]),
  ],
  [
    'MissingBlocks{[0x05]}',
    { type: 'MissingBlocks', bitmap: Uint8Array.of(0x05) },
    hex('06 00 00 00 8a 01 00 00 00 05'),
  ],
  ['OpenDirectChannel', { type: 'OpenDirectChannel' }, hex('01 00 00 00 0b')],
  [
    'DirectChannelReady{"127.0.0.1:40000", 42x32}',
    { type: 'DirectChannelReady', addr: '127.0.0.1:40000', sessionKey: rep(0x42) },
    Buffer.concat([
      hex('34 00 00 00 8b 0f 00 00 00 31 32 37 2e 30 2e 30 2e 31 3a 34 30 30 30 30'),
      rep(0x42),
    ]),
  ],
  [
    'AuthChallenge{07x32}',
    { type: 'AuthChallenge', nonce: rep(0x07) },
    Buffer.concat([hex('21 00 00 00 8c'), rep(0x07)]),
  ],
  [
    'AuthHello for key 42x32, nonce 07x32',
    { type: 'AuthHello', mac: hex('afa361def8241d2df183288913771805aa306687987c0aeea20f6b27f3bf2b16') },
    hex(
      '21 00 00 00 0c af a3 61 de f8 24 1d 2d f1 83 28 89 13 77 18 05 aa 30 66 87 98 7c 0a ee a2 0f 6b 27 f3 bf 2b 16',
    ),
  ],
  [
    'Ok{Some(BLAKE3("hello"))}',
    { type: 'Ok', hash: hashHello },
    Buffer.concat([hex('46 00 00 00 82 01 40 00 00 00'), Buffer.from(hashHello, 'ascii')]),
  ],
];

describe('Golden frames (PROTOCOL.md section 18; the AEAD record vectors are in test/property/aead_stream)', () => {
  for (const [name, msg, bytes] of VECTORS) {
    it(`encodes ${name}`, () => {
      assert.equal(encode(msg).toString('hex'), bytes.toString('hex'));
    });
    it(`decodes ${name}`, () => {
      const got = decodeAll(bytes);
      assert.equal(got.length, 1);
      assert.deepEqual(normalise(got[0]), normalise(msg));
    });
  }

  it('decodes Hello and Welcome without the caps byte as caps 0', () => {
    assert.deepEqual(decodeAll(hex('02 00 00 00 01 02')), [{ type: 'Hello', version: 2, caps: 0 }]);
    assert.deepEqual(decodeAll(hex('02 00 00 00 81 02')), [{ type: 'Welcome', version: 2, caps: 0 }]);
  });

  it('computes the AuthHello MAC of the vector', async () => {
    assert.equal(
      (await directMac(rep(0x42), rep(0x07))).toString('hex'),
      'afa361def8241d2df183288913771805aa306687987c0aeea20f6b27f3bf2b16',
    );
  });
});

const native = nativeImpl();
if (!native)
  process.stderr.write('no native BLAKE3 binding for this platform: only the portable one is tested\n');

for (const impl of [native, await portableImpl()]) {
  if (!impl) continue;
  describe(`BLAKE3 vectors (${impl.name})`, () => {
    const hex = (d: Uint8Array) => impl.hash(d).toString('hex');
    it('hashes the empty input', () => {
      assert.equal(hex(new Uint8Array()), 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
    });
    it('hashes "hello", one-shot and streamed', () => {
      assert.equal(hex(Buffer.from('hello')), hashHello);
      assert.equal(impl.hasher().update('he').update(Buffer.from('llo')).digest('hex'), hashHello);
    });
    it('a reset hasher (reused for the next file) hashes from nothing again', () => {
      const h = impl.hasher().update('previous file');
      h.digest('hex');
      h.reset();
      assert.equal(h.update('hello').digest('hex'), hashHello);
    });
    it('hashes 1 MiB of i mod 251, one-shot and in uneven pieces; two hashers at once keep apart', () => {
      const b = new Uint8Array(1 << 20);
      for (let i = 0; i < b.length; i++) b[i] = i % 251;
      const want = '74cb441fd087764ca9c3694da742ebe30cbeb3060a17009ca81825c7a8d10343';
      assert.equal(hex(b), want);
      const a = impl.hasher();
      const other = impl.hasher();
      for (let o = 0; o < b.length; o += 65_537) {
        a.update(b.subarray(o, o + 65_537));
        other.update(Buffer.from('interleaved'));
      }
      assert.equal(a.digest('hex'), want);
      assert.equal(Buffer.from(a.digestBuffer()).toString('hex'), want);
    });
    it('computes the keyed AuthHello MAC of the vector', async () => {
      assert.equal(
        (await directMac(rep(0x42), rep(0x07), impl)).toString('hex'),
        'afa361def8241d2df183288913771805aa306687987c0aeea20f6b27f3bf2b16',
      );
    });
  });
}

describe('spare hashers', () => {
  it('one handed back is handed out again, and starts from nothing', () => {
    const h = takeHasher().update('a file before');
    assert.equal(digestAndRecycle(h), blake3Hex(Buffer.from('a file before')));
    const again = takeHasher();
    assert.equal(again, h);
    assert.equal(digestAndRecycle(again.update('hello')), hashHello);
  });
});
