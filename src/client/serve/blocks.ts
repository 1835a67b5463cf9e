/**
 * The one per-block comparison of a local file with the server's copy, shared by -C (the
 * verified prefix of a part file: resume.ts) and a rerun's striped part file (the blocks it
 * already holds: stripe.ts): each 4 MiB block's BLAKE3 here against the server's Hash of the
 * same range, all asked at once (pipelined), compared in order.
 */
import { blake3Hex } from '../../codec/hash.js';
import { MAX_BLOCK } from '../../protocol/constants.js';
import type { FdFile } from '../../util/fd_file.js';
import type { ServeClient } from './serve_client.js';

/**
 * Compares the blocks of `local`'s first `length` bytes with `remotePath`'s. `onBlock` sees
 * each block in order (its bytes, where it starts, whether it matched); returning false stops
 * there. A block that cannot be read whole here never matches; a Hash the server refuses
 * counts as a different block (`hashErrors: 'differ'`) or is thrown when reached ('throw').
 */
export async function compareBlocks(
  client: ServeClient,
  remotePath: string,
  local: FdFile,
  length: number,
  hashErrors: 'differ' | 'throw',
  onBlock: (view: Buffer, offset: number, same: boolean) => boolean,
  /** Compare `[start, start + length)` in blocks of `blockSize` (default: the whole file's 4 MiB). */
  { start = 0, blockSize = MAX_BLOCK }: { start?: number; blockSize?: number } = {},
): Promise<void> {
  const blocks: [number, number][] = [];
  const end = start + length;
  for (let off = start; off < end; off += blockSize) blocks.push([off, Math.min(blockSize, end - off)]);
  // Settled either way at once: stopping early must not leave a rejection unhandled.
  const theirs = blocks.map(([o, l]) =>
    client.hash(remotePath, o, l).then(
      (h) => h,
      (err: Error) => (hashErrors === 'differ' ? '' : err),
    ),
  );
  try {
    const buf = Buffer.allocUnsafe(Math.min(blockSize, Math.max(length, 1)));
    for (const [i, [o, l]] of blocks.entries()) {
      // This block is read and hashed here while the server hashes its own: the two ends work
      // at once instead of taking turns.
      const view = buf.subarray(0, l);
      const mine = (await local.read(buf, l, o)) === l ? blake3Hex(view) : null;
      const remote = await theirs[i];
      if (remote instanceof Error) throw remote;
      if (!onBlock(view, o, mine !== null && mine === remote)) return;
    }
  } finally {
    await Promise.all(theirs);
  }
}
