/**
 * Per-block compression (PROTOCOL.md section 7): zstd level 3 frames, raw LZ4 blocks, or
 * raw Data. A block whose compressed form is over 95 % of the original travels raw.
 */
import zlib from 'node:zlib';
import { ProtocolError } from '../errors.js';
import { Algo, Cap, ZSTD_LEVEL } from '../protocol/constants.js';
import type { DataMessage } from '../protocol/messages.js';
import { PORTABLE_FORCED } from './hash.js';

export type Codec = 'zstd' | 'lz4' | 'none';

/** Same rule on both sides: zstd if both have it, else LZ4, else none. */
export function codecFor(effectiveCaps: number): Codec {
  if (effectiveCaps & Cap.ZSTD) return 'zstd';
  if (effectiveCaps & Cap.LZ4) return 'lz4';
  return 'none';
}

/**
 * zstd is in node:zlib from Node 22.15 (and 23.8); on an older runtime this process neither
 * offers nor asks for it, and peers settle on LZ4 or raw (PROTOCOL.md section 4).
 */
const HAS_ZSTD = typeof zlib.zstdCompressSync === 'function';

type Lz4 = typeof import('lz4-napi');
/**
 * LZ4 is a native addon (lz4-napi, one package per platform): where it does not load, or with
 * BCMR_PORTABLE=1 (no native code at all), LZ4 is left out of the caps.
 */
const lz4: Lz4 | null = PORTABLE_FORCED
  ? null
  : await import('lz4-napi').then(
      (m) => m as Lz4,
      () => null,
    );
const HAS_LZ4 = lz4 !== null;

/** The capability bits this runtime can serve: every bit but a codec it lacks. */
export const RUNTIME_CAPS = 0xff & ~(HAS_ZSTD ? 0 : Cap.ZSTD) & ~(HAS_LZ4 ? 0 : Cap.LZ4);

/** What `bcmr --version` says about the codecs. */
export function codecsDescription(): string {
  return `zstd ${HAS_ZSTD ? 'node:zlib' : 'missing (Node < 22.15)'}, lz4 ${HAS_LZ4 ? 'native' : 'missing'}`;
}

/** zstd options per level (level_control.ts picks one per block). */
const zstdOpts = new Map<number, zlib.ZstdOptions>();
function zstdOptions(level: number): zlib.ZstdOptions {
  let o = zstdOpts.get(level);
  if (!o) {
    o = HAS_ZSTD ? { params: { [zlib.constants.ZSTD_c_compressionLevel]: level } } : {};
    zstdOpts.set(level, o);
  }
  return o;
}

/** True when `compressed` bytes are worth sending instead of `original` bytes. */
function worthIt(compressed: number, original: number): boolean {
  return compressed * 20 <= original * 19;
}

/** Largest probe: a 4 MiB block is judged on its first 64 KiB. */
export const SAMPLE_BYTES = 64 * 1024;
/** Blocks up to this size are compressed outright. */
const PROBE_ABOVE = 8 * 1024;
/** Bits per byte below which entropy coding alone saves more than 5 %. */
const ENTROPY_LIMIT = 7.5;

/**
 * Whether a block looks compressible, judged on a probe of its first 1/16th (4 to 64 KiB):
 * its byte entropy (what zstd's entropy stage can gain, e.g. base64 or hex text) or an LZ4
 * pass (repetition). Both are cheap; a zstd call is not (it builds a context each time, and
 * compressing incompressible data costs ~0.9 s of CPU per GiB here). A block judged
 * incompressible travels raw, as PROTOCOL.md section 7 allows a sender to do at any time.
 */
function looksCompressible(block: Uint8Array): boolean {
  if (block.length <= PROBE_ABOVE) return true;
  const sample = block.subarray(0, Math.min(SAMPLE_BYTES, Math.max(4096, block.length >> 4)));
  if (entropyBits(sample) < ENTROPY_LIMIT) return true;
  if (!lz4) return true; // no LZ4 to probe with: let the codec try
  try {
    const l = lz4.compressSync(Buffer.from(sample.buffer, sample.byteOffset, sample.length));
    return worthIt(l.length - 4, sample.length);
  } catch {
    return false;
  }
}

const counts = new Uint32Array(256);

/** Shannon entropy of the bytes, in bits per byte. */
export function entropyBits(b: Uint8Array): number {
  counts.fill(0);
  for (let i = 0; i < b.length; i++) counts[b[i]]++;
  let h = 0;
  for (let i = 0; i < 256; i++) {
    const c = counts[i];
    if (c > 0) {
      const p = c / b.length;
      h -= p * Math.log2(p);
    }
  }
  return h;
}

/**
 * The data frame for one block (zstd at `level`). `block` may be a view of a reused buffer: a raw frame refers
 * to it, so the caller must not overwrite it until the frame has been written.
 */
export function encodeBlock(block: Uint8Array, codec: Codec, level = ZSTD_LEVEL): DataMessage {
  if (codec === 'none' || block.length === 0 || !looksCompressible(block))
    return { type: 'Data', data: block };
  try {
    if (codec === 'zstd') {
      const z = zlib.zstdCompressSync(block, zstdOptions(level));
      if (worthIt(z.length, block.length)) {
        return { type: 'DataCompressed', algo: Algo.ZSTD, originalSize: block.length, payload: z };
      }
    } else {
      // lz4-napi prepends the block's size as u32 LE; the wire carries the bare block.
      const l = (lz4 as Lz4).compressSync(Buffer.from(block.buffer, block.byteOffset, block.length));
      if (worthIt(l.length - 4, block.length)) {
        return { type: 'DataCompressed', algo: Algo.LZ4, originalSize: block.length, payload: l.subarray(4) };
      }
    }
  } catch {
    // A compressor failure sends the block raw, as the Rust sender does.
  }
  return { type: 'Data', data: block };
}

/** The file bytes carried by a data frame. Raises ProtocolError if it does not decode exactly. */
export function decodeBlock(m: DataMessage): Uint8Array {
  if (m.type === 'Data') return m.data;
  let out: Buffer;
  try {
    if (m.algo === Algo.ZSTD) {
      out = zlib.zstdDecompressSync(m.payload, { maxOutputLength: m.originalSize });
    } else {
      out = (lz4 as Lz4).uncompressSync(withSizePrefix(m.payload, m.originalSize));
    }
  } catch (err) {
    throw new ProtocolError(`Corrupt compressed block: ${(err as Error).message}`);
  }
  if (out.length !== m.originalSize) {
    throw new ProtocolError(`Compressed block decoded to ${out.length} bytes, expected ${m.originalSize}`);
  }
  return out;
}

/** lz4-napi wants the size-prefixed form: prepend original_size to the bare block. */
function withSizePrefix(payload: Uint8Array, size: number): Buffer {
  const b = Buffer.allocUnsafe(4 + payload.length);
  b.writeUInt32LE(size, 0);
  b.set(payload, 4);
  return b;
}
