/**
 * Reads a file range in 4 MiB blocks into reused buffers. Two buffers alternate so the next
 * read overlaps with the write of the previous block; a buffer is read into again only once
 * the consumer has released it (its bytes were written or copied).
 */
import { MAX_BLOCK } from '../protocol/constants.js';
import type { FdFile } from './fd_file.js';

/** Resolves when the consumer no longer needs the block's memory. */
export type Release = { released: Promise<void> | null };

export const RELEASED: Release = { released: null };

export class BlockBuffers {
  readonly bufs: [Buffer, Buffer];
  constructor(size = MAX_BLOCK) {
    this.bufs = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
  }
}

/**
 * Calls `onBlock` with each block of `[offset, offset + length)` (to EOF when `length` is
 * null), in order. Returns the number of bytes read.
 */
export async function readBlocks(
  file: FdFile,
  offset: number,
  length: number | null,
  buffers: BlockBuffers,
  onBlock: (block: Uint8Array) => Promise<Release> | Release,
): Promise<number> {
  const pending: (Promise<void> | null)[] = [null, null];
  let pos = offset;
  let remaining = length ?? Number.POSITIVE_INFINITY;
  let k = 0;
  try {
    while (remaining > 0) {
      const buf = buffers.bufs[k];
      if (pending[k]) await pending[k];
      pending[k] = null;
      const want = Math.min(buf.length, remaining);
      const bytesRead = await file.read(buf, want, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      remaining -= bytesRead;
      pending[k] = (await onBlock(buf.subarray(0, bytesRead))).released;
      k ^= 1;
    }
  } finally {
    // Never return while a write still reads from our buffers.
    await Promise.allSettled(pending.filter((p) => p !== null));
  }
  await Promise.all(pending.filter((p) => p !== null));
  return pos - offset;
}
