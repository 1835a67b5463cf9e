/**
 * Encode and decode protocol v2 messages.
 *
 *   +----------------+---------+---------------------------+
 *   | len: u32 LE    | type:u8 | body: len - 1 bytes        |
 *   +----------------+---------+---------------------------+
 *
 * `len` counts the type byte and the body. Decoding consumes the body exactly; a short
 * body, trailing bytes, an unknown type or a count over its cap is a `ProtocolError`.
 */
import { ProtocolError } from '../errors.js';
import { ByteReader } from './byte_reader.js';
import { ByteWriter } from './byte_writer.js';
import {
  Algo,
  type AlgoId,
  MAX_BLOCK,
  MAX_COUNT,
  MAX_FRAME_LEN,
  MsgType,
  type MsgTypeName,
} from './constants.js';
import type { ListEntry, Message } from './messages.js';

const HASH_LEN = 32;

function strLen(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function checkU64(v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${what} must be a safe non-negative integer`);
}

function checkFixed(b: Uint8Array, n: number, what: string): void {
  if (b.length !== n) throw new RangeError(`${what} must be ${n} bytes, got ${b.length}`);
}

/** Starts a frame: checks the cap, reserves the fixed part, writes len and type. */
function header(w: ByteWriter, type: number, bodyLen: number, contiguous = bodyLen): void {
  const len = 1 + bodyLen;
  if (len > MAX_FRAME_LEN) throw new RangeError(`Frame of ${len} bytes exceeds ${MAX_FRAME_LEN} bytes`);
  w.ensure(5 + contiguous);
  w.u32(len);
  w.u8(type);
}

function pathFrame(w: ByteWriter, type: number, path: string, extra = 0): void {
  const n = strLen(path);
  header(w, type, 4 + n + extra);
  w.u32(n);
  w.utf8(path, n);
}

/** Appends the frame for `m` to `w`. Large Data payloads are kept by reference, not copied. */
export function encodeMessage(w: ByteWriter, m: Message): void {
  switch (m.type) {
    case 'Hello':
    case 'Welcome':
      header(w, MsgType[m.type], 2);
      w.u8(m.version);
      w.u8(m.caps);
      return;
    case 'List':
    case 'Stat':
    case 'Mkdir':
    case 'Resume':
      pathFrame(w, MsgType[m.type], m.path);
      return;
    case 'Hash':
      checkU64(m.offset, 'offset');
      if (m.limit !== null) checkU64(m.limit, 'limit');
      pathFrame(w, MsgType.Hash, m.path, 8 + 1 + (m.limit === null ? 0 : 8));
      w.u64(m.offset);
      if (m.limit === null) w.u8(0);
      else {
        w.u8(1);
        w.u64(m.limit);
      }
      return;
    case 'Get':
      checkU64(m.offset, 'offset');
      pathFrame(w, MsgType.Get, m.path, 8);
      w.u64(m.offset);
      return;
    case 'Put':
      checkU64(m.size, 'size');
      checkU64(m.offset, 'offset');
      pathFrame(w, MsgType.Put, m.path, 17);
      w.u64(m.size);
      w.u64(m.offset);
      w.u8(m.overwrite ? 1 : 0);
      return;
    case 'Done':
    case 'OpenDirectChannel':
      header(w, MsgType[m.type], 0);
      return;
    case 'HaveBlocks': {
      if (m.hashes.length % HASH_LEN !== 0) throw new RangeError('HaveBlocks hashes must be 32-byte digests');
      const count = m.hashes.length / HASH_LEN;
      if (count > MAX_COUNT) throw new RangeError(`HaveBlocks count ${count} exceeds ${MAX_COUNT}`);
      header(w, MsgType.HaveBlocks, 8 + m.hashes.length, 8);
      w.u32(m.blockSize);
      w.u32(count);
      w.payload(m.hashes);
      return;
    }
    case 'AuthHello':
      checkFixed(m.mac, HASH_LEN, 'mac');
      header(w, MsgType.AuthHello, HASH_LEN);
      w.raw(m.mac);
      return;
    case 'AuthChallenge':
      checkFixed(m.nonce, HASH_LEN, 'nonce');
      header(w, MsgType.AuthChallenge, HASH_LEN);
      w.raw(m.nonce);
      return;
    case 'PutChunked':
    case 'GetChunked':
      checkU64(m.offset, 'offset');
      checkU64(m.length, 'length');
      pathFrame(w, MsgType[m.type], m.path, 16);
      w.u64(m.offset);
      w.u64(m.length);
      return;
    case 'Truncate':
      checkU64(m.size, 'size');
      pathFrame(w, MsgType.Truncate, m.path, 8);
      w.u64(m.size);
      return;
    case 'Ok':
      if (m.hash === null) {
        header(w, MsgType.Ok, 1);
        w.u8(0);
      } else {
        const n = strLen(m.hash);
        header(w, MsgType.Ok, 5 + n);
        w.u8(1);
        w.u32(n);
        w.utf8(m.hash, n);
      }
      return;
    case 'Error':
    case 'HashResponse': {
      const s = m.type === 'Error' ? m.message : m.hash;
      pathFrame(w, MsgType[m.type], s);
      return;
    }
    case 'Data':
      if (m.data.length > MAX_BLOCK)
        throw new RangeError(`Data block of ${m.data.length} bytes exceeds 4 MiB`);
      header(w, MsgType.Data, 4 + m.data.length, 4);
      w.u32(m.data.length);
      w.payload(m.data);
      return;
    case 'DataCompressed':
      if (m.originalSize < 1 || m.originalSize > MAX_BLOCK)
        throw new RangeError('original_size out of range');
      header(w, MsgType.DataCompressed, 9 + m.payload.length, 9);
      w.u8(m.algo);
      w.u32(m.originalSize);
      w.u32(m.payload.length);
      w.payload(m.payload);
      return;
    case 'StatResponse':
      checkU64(m.size, 'size');
      header(w, MsgType.StatResponse, 17);
      w.u64(m.size);
      w.i64(m.mtime);
      w.u8(m.isDir ? 1 : 0);
      return;
    case 'ListResponse': {
      if (m.entries.length > MAX_COUNT) throw new RangeError(`ListResponse count exceeds ${MAX_COUNT}`);
      const lens = m.entries.map((e) => strLen(e.path));
      let body = 4;
      for (const n of lens) body += 4 + n + 17;
      header(w, MsgType.ListResponse, body);
      w.u32(m.entries.length);
      m.entries.forEach((e, i) => {
        checkU64(e.size, 'size');
        w.u32(lens[i]);
        w.utf8(e.path, lens[i]);
        w.u64(e.size);
        w.i64(e.mtime);
        w.u8(e.isDir ? 1 : 0);
      });
      return;
    }
    case 'ResumeResponse':
      checkU64(m.size, 'size');
      if (m.blockHash === null) {
        header(w, MsgType.ResumeResponse, 9);
        w.u64(m.size);
        w.u8(0);
      } else {
        const n = strLen(m.blockHash);
        header(w, MsgType.ResumeResponse, 13 + n);
        w.u64(m.size);
        w.u8(1);
        w.u32(n);
        w.utf8(m.blockHash, n);
      }
      return;
    case 'MissingBlocks':
      header(w, MsgType.MissingBlocks, 4 + m.bitmap.length, 4);
      w.u32(m.bitmap.length);
      w.payload(m.bitmap);
      return;
    case 'DirectChannelReady': {
      checkFixed(m.sessionKey, HASH_LEN, 'session key');
      const n = strLen(m.addr);
      header(w, MsgType.DirectChannelReady, 4 + n + HASH_LEN);
      w.u32(n);
      w.utf8(m.addr, n);
      w.raw(m.sessionKey);
      return;
    }
    default:
      // A message type added to `Message` and not encoded here fails to compile.
      unhandled(m);
  }
}

/** The `default` of an exhaustive switch: reached only if a case is missing, which fails to compile. */
function unhandled(x: never): never {
  throw new RangeError(`unhandled message type ${JSON.stringify(x)}`);
}

/**
 * Every message type has a wire code and every wire code a message type: a type added to one
 * side only fails to compile here.
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const CODES_MATCH_MESSAGES: Same<MsgTypeName, Message['type']> = true;
void CODES_MATCH_MESSAGES;

/** Wire code -> message type name, indexed by the type byte. */
const TYPE_NAMES: (MsgTypeName | undefined)[] = [];
for (const [name, code] of Object.entries(MsgType)) TYPE_NAMES[code] = name as MsgTypeName;

/** One message as a standalone frame (handshake frames written outside a FrameSink). */
export function encodeFrame(m: Message): Buffer {
  const w = new ByteWriter();
  encodeMessage(w, m);
  return Buffer.concat(w.take());
}

function typeName(type: number): string {
  return TYPE_NAMES[type] ?? `0x${type.toString(16).padStart(2, '0')}`;
}

/**
 * Decodes the body of one frame: `buf[start]` is the type byte and the frame ends at `end`.
 * Data payloads are views into `buf`.
 */
export function decodeFrame(buf: Uint8Array, start: number, end: number): Message {
  const type = buf[start];
  const name = TYPE_NAMES[type];
  if (name === undefined) throw new ProtocolError(`Unknown message type ${typeName(type)}`);
  const r = new ByteReader(buf, start + 1, end);
  let m: Message;
  switch (name) {
    case 'Hello':
    case 'Welcome': {
      const version = r.u8('version');
      // The one tolerance of v2: the caps byte may be missing and then reads as 0.
      const caps = r.remaining > 0 ? r.u8('caps') : 0;
      m = { type: name, version, caps };
      break;
    }
    case 'List':
      m = { type: 'List', path: r.string('path') };
      break;
    case 'Stat':
      m = { type: 'Stat', path: r.string('path') };
      break;
    case 'Mkdir':
      m = { type: 'Mkdir', path: r.string('path') };
      break;
    case 'Resume':
      m = { type: 'Resume', path: r.string('path') };
      break;
    case 'Hash': {
      const path = r.string('path');
      const offset = r.u64('offset');
      const limit = r.present('limit') ? r.u64('limit') : null;
      m = { type: 'Hash', path, offset, limit };
      break;
    }
    case 'Get':
      m = { type: 'Get', path: r.string('path'), offset: r.u64('offset') };
      break;
    case 'Put':
      m = {
        type: 'Put',
        path: r.string('path'),
        size: r.u64('size'),
        offset: r.u64('offset'),
        overwrite: r.bool('overwrite'),
      };
      break;
    case 'Done':
      m = { type: 'Done' };
      break;
    case 'OpenDirectChannel':
      m = { type: 'OpenDirectChannel' };
      break;
    case 'HaveBlocks': {
      const blockSize = r.u32('block_size');
      const count = r.u32('count');
      if (count > MAX_COUNT) throw new ProtocolError(`HaveBlocks count ${count} exceeds ${MAX_COUNT}`);
      m = { type: 'HaveBlocks', blockSize, hashes: r.span(count * HASH_LEN, 'hashes') };
      break;
    }
    case 'AuthHello':
      m = { type: 'AuthHello', mac: r.span(HASH_LEN, 'mac') };
      break;
    case 'AuthChallenge':
      m = { type: 'AuthChallenge', nonce: r.span(HASH_LEN, 'nonce') };
      break;
    case 'PutChunked':
    case 'GetChunked':
      m = {
        type: name,
        path: r.string('path'),
        offset: r.u64('offset'),
        length: r.u64('length'),
      };
      break;
    case 'Truncate':
      m = { type: 'Truncate', path: r.string('path'), size: r.u64('size') };
      break;
    case 'Ok':
      m = { type: 'Ok', hash: r.present('hash') ? r.string('hash') : null };
      break;
    case 'Error':
      m = { type: 'Error', message: r.string('message') };
      break;
    case 'Data': {
      const n = r.u32('data length');
      if (n > MAX_BLOCK) throw new ProtocolError(`Data block of ${n} bytes exceeds 4 MiB`);
      m = { type: 'Data', data: r.span(n, 'data') };
      break;
    }
    case 'DataCompressed': {
      const algo = r.u8('algo');
      if (algo !== Algo.LZ4 && algo !== Algo.ZSTD)
        throw new ProtocolError(`Unknown compression algo ${algo}`);
      const originalSize = r.u32('original_size');
      if (originalSize === 0 || originalSize > MAX_BLOCK) {
        throw new ProtocolError(`DataCompressed original_size ${originalSize} out of range`);
      }
      m = { type: 'DataCompressed', algo: algo as AlgoId, originalSize, payload: r.bytes('payload') };
      break;
    }
    case 'StatResponse':
      m = { type: 'StatResponse', size: r.u64('size'), mtime: r.i64('mtime'), isDir: r.bool('is_dir') };
      break;
    case 'HashResponse':
      m = { type: 'HashResponse', hash: r.string('hash') };
      break;
    case 'ListResponse': {
      const count = r.u32('count');
      if (count > MAX_COUNT) throw new ProtocolError(`ListResponse count ${count} exceeds ${MAX_COUNT}`);
      // Each entry takes at least 21 bytes: refuse a count the body cannot hold before looping.
      if (count * 21 > r.remaining) throw new ProtocolError(`ListResponse count ${count} exceeds its body`);
      const entries: ListEntry[] = new Array(count);
      for (let i = 0; i < count; i++) {
        entries[i] = {
          path: r.string('path'),
          size: r.u64('size'),
          mtime: r.i64('mtime'),
          isDir: r.bool('is_dir'),
        };
      }
      m = { type: 'ListResponse', entries };
      break;
    }
    case 'ResumeResponse': {
      const size = r.u64('size');
      m = {
        type: 'ResumeResponse',
        size,
        blockHash: r.present('block_hash') ? r.string('block_hash') : null,
      };
      break;
    }
    case 'MissingBlocks':
      m = { type: 'MissingBlocks', bitmap: r.bytes('bitmap') };
      break;
    case 'DirectChannelReady':
      m = { type: 'DirectChannelReady', addr: r.string('addr'), sessionKey: r.span(HASH_LEN, 'session_key') };
      break;
    default:
      // A message type without a decoder here fails to compile.
      return unhandled(name);
  }
  r.expectEnd(typeName(type));
  return m;
}

/** Checks a frame's `len` field before anything is allocated for it. */
export function checkFrameLen(len: number): void {
  if (len === 0) throw new ProtocolError('Frame length 0 is malformed');
  if (len > MAX_FRAME_LEN) throw new ProtocolError(`Frame of ${len} bytes exceeds ${MAX_FRAME_LEN} bytes`);
}
