/** Dedup uploads (PROTOCOL.md section 9): block hashes of a file, computed once. */
import { Blake3Hasher, blake3Raw } from '../../codec/hash.js';
import type { Prehash } from '../../core/items.js';
import { IntegrityError } from '../../errors.js';
import { MAX_BLOCK } from '../../protocol/constants.js';
import { FdFile } from '../../util/fd_file.js';
import { BlockBuffers, RELEASED, readBlocks } from '../../util/file_blocks.js';

/**
 * Hashes a file's 4 MiB blocks (and the whole file) for a later dedup Put; null on failure, or
 * once `signal` aborts (the file will not go through dedup after all: it is striped).
 */
export async function prehashFile(file: string, signal?: AbortSignal): Promise<Prehash | null> {
  try {
    const fh = FdFile.open(file, 'r');
    try {
      const size = fh.stat().size;
      const whole = new Blake3Hasher();
      return { size, hashes: await blockHashes(fh, size, new BlockBuffers(), whole, signal), whole };
    } finally {
      fh.close();
    }
  } catch {
    return null;
  }
}

/**
 * BLAKE3 of each 4 MiB block of the file (32 raw bytes each), for HaveBlocks. The same pass
 * feeds `whole` (the file's hash), so sending the blocks afterwards needs no second hash.
 */
export async function blockHashes(
  fh: FdFile,
  size: number,
  buffers: BlockBuffers,
  whole: Blake3Hasher,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const count = Math.ceil(size / MAX_BLOCK);
  const out = Buffer.allocUnsafe(count * 32);
  let i = 0;
  await readBlocks(fh, 0, size, buffers, (block) => {
    signal?.throwIfAborted();
    if (block.length !== Math.min(MAX_BLOCK, size - i * MAX_BLOCK)) {
      throw new IntegrityError(`${fh.path}: short read while hashing blocks`);
    }
    blake3Raw(block).copy(out, i * 32);
    whole.update(block);
    i++;
    return RELEASED;
  });
  if (i !== count) throw new IntegrityError(`${fh.path}: file changed size while being hashed`);
  return out;
}
