/**
 * Append-only little-endian writer that gathers many small frames into one slab and
 * keeps large payloads by reference, so a burst of small requests costs one write and a
 * 4 MiB Data payload is never copied. Ranges handed out by `take()` are never written again:
 * when a slab is full a new one is allocated and the old one lives on in the taken views.
 */

const SLAB_SIZE = 256 * 1024;
/**
 * Slabs kept for reuse once the bytes taken from them are written. Without reuse every 256 KiB
 * of small frames is a fresh allocation (mmap, page faults, munmap) freed only at the next GC:
 * on 10,000 small files that was over a second of CPU and tens of MB of peak RSS.
 */
const MAX_FREE_SLABS = 8;
/** Payloads at least this large travel by reference instead of being copied into the slab. */
export const REF_THRESHOLD = 256 * 1024;

export class ByteWriter {
  private slab: Buffer = Buffer.allocUnsafe(SLAB_SIZE);
  private start = 0;
  private pos = 0;
  private parts: Uint8Array[] = [];
  private partsBytes = 0;
  /** Slabs filled and replaced since the last `take()`: all their bytes are in taken views. */
  private retired: Buffer[] = [];
  private readonly free: Buffer[] = [];

  /** Bytes written since the last `take()`. */
  get pending(): number {
    return this.partsBytes + (this.pos - this.start);
  }

  /** Makes `n` contiguous bytes available at `pos`. */
  ensure(n: number): void {
    if (this.slab.length - this.pos >= n) return;
    this.commit();
    this.retired.push(this.slab);
    this.slab = (n <= SLAB_SIZE ? this.free.pop() : undefined) ?? Buffer.allocUnsafe(Math.max(SLAB_SIZE, n));
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

  /**
   * The slabs retired up to the last `take()`. Once the views that take returned (and every
   * earlier one) are written, hand them to `recycle`.
   */
  takeRetired(): Buffer[] {
    const out = this.retired;
    this.retired = [];
    return out;
  }

  /** Slabs from `takeRetired` whose bytes are written: the next frames may reuse them. */
  recycle(slabs: Buffer[]): void {
    for (const s of slabs) {
      if (this.free.length >= MAX_FREE_SLABS) return;
      if (s.length === SLAB_SIZE) this.free.push(s);
    }
  }

  private commit(): void {
    if (this.pos > this.start) {
      this.parts.push(this.slab.subarray(this.start, this.pos));
      this.partsBytes += this.pos - this.start;
      this.start = this.pos;
    }
  }
}
