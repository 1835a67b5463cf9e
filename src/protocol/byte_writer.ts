/**
 * Append-only little-endian writer that gathers many small frames into one slab and
 * keeps large payloads by reference, so a burst of small requests costs one write and a
 * 4 MiB Data payload is never copied. Ranges handed out by `take()` are never written again:
 * when a slab is full a new one is allocated and the old one lives on in the taken views.
 */

const SLAB_SIZE = 256 * 1024;
/** Payloads at least this large travel by reference instead of being copied into the slab. */
export const REF_THRESHOLD = 256 * 1024;

export class ByteWriter {
  private slab: Buffer = Buffer.allocUnsafe(SLAB_SIZE);
  private start = 0;
  private pos = 0;
  private parts: Uint8Array[] = [];
  private partsBytes = 0;

  /** Bytes written since the last `take()`. */
  get pending(): number {
    return this.partsBytes + (this.pos - this.start);
  }

  /** Makes `n` contiguous bytes available at `pos`. */
  ensure(n: number): void {
    if (this.slab.length - this.pos >= n) return;
    this.commit();
    this.slab = Buffer.allocUnsafe(Math.max(SLAB_SIZE, n));
    this.start = 0;
    this.pos = 0;
  }

  u8(v: number): void {
    this.slab[this.pos++] = v;
  }

  u32(v: number): void {
    this.slab.writeUInt32LE(v, this.pos);
    this.pos += 4;
  }

  u64(v: number): void {
    // Safe integers only (checked by the encoder); split to avoid BigInt on the hot path.
    const lo = v % 0x1_0000_0000;
    this.slab.writeUInt32LE(lo, this.pos);
    this.slab.writeUInt32LE((v - lo) / 0x1_0000_0000, this.pos + 4);
    this.pos += 8;
  }

  i64(v: number): void {
    this.slab.writeBigInt64LE(BigInt(v), this.pos);
    this.pos += 8;
  }

  /** Writes `s` as UTF-8; `byteLength` must be `Buffer.byteLength(s)`. */
  utf8(s: string, byteLength: number): void {
    this.slab.write(s, this.pos, byteLength, 'utf8');
    this.pos += byteLength;
  }

  raw(b: Uint8Array): void {
    this.slab.set(b, this.pos);
    this.pos += b.length;
  }

  /** Appends `b` without copying when it is large; the caller must not modify it afterwards. */
  payload(b: Uint8Array): void {
    if (b.length < REF_THRESHOLD) {
      this.ensure(b.length);
      this.raw(b);
      return;
    }
    this.commit();
    this.parts.push(b);
    this.partsBytes += b.length;
  }

  /** Returns everything written since the last call, as views in order. */
  take(): Uint8Array[] {
    this.commit();
    const out = this.parts;
    this.parts = [];
    this.partsBytes = 0;
    return out;
  }

  private commit(): void {
    if (this.pos > this.start) {
      this.parts.push(this.slab.subarray(this.start, this.pos));
      this.partsBytes += this.pos - this.start;
      this.start = this.pos;
    }
  }
}
