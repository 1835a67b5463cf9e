/**
 * Bounds-checked little-endian reader over one frame body. Every shortfall is a
 * `ProtocolError`: a body shorter than its fields is malformed (PROTOCOL.md section 3).
 */
import { ProtocolError } from '../errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export class ByteReader {
  private pos: number;
  private readonly view: DataView;

  constructor(
    private readonly buf: Uint8Array,
    start: number,
    private readonly end: number,
  ) {
    this.pos = start;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (this.end - this.pos < n) throw new ProtocolError(`Truncated frame body reading ${what}`);
  }

  u8(what = 'u8'): number {
    this.need(1, what);
    return this.buf[this.pos++];
  }

  u32(what = 'u32'): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  u64(what = 'u64'): number {
    this.need(8, what);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    if (hi > 0x1fffff) throw new ProtocolError(`Value of ${what} exceeds 2^53`);
    return hi * 0x1_0000_0000 + lo;
  }

  i64(what = 'i64'): number {
    this.need(8, what);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new ProtocolError(`Value of ${what} exceeds 2^53`);
    }
    return Number(v);
  }

  bool(what = 'bool'): boolean {
    return this.u8(what) !== 0;
  }

  /** A view of the next `n` bytes (no copy). */
  span(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** u32 length then that many bytes, as a view. */
  bytes(what = 'bytes'): Uint8Array {
    const n = this.u32(`${what} length`);
    return this.span(n, what);
  }

  string(what = 'string'): string {
    const b = this.bytes(what);
    try {
      return utf8.decode(b);
    } catch {
      throw new ProtocolError(`Invalid UTF-8 in ${what}`);
    }
  }

  /** opt<T>: tag 1 means a value follows; any other tag means absent. */
  present(what = 'option'): boolean {
    return this.u8(`${what} tag`) === 1;
  }

  expectEnd(what: string): void {
    if (this.pos !== this.end) {
      throw new ProtocolError(`${this.end - this.pos} trailing bytes after ${what}`);
    }
  }
}
