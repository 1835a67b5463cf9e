/**
 * Pipelined uploads of many files over one ServeClient; the server's Ok hash must equal the
 * source's. Fresh large files go through dedup (dedup.ts); -C uploads are resume.ts's.
 */
import fs from 'node:fs';
import { digestAndRecycle, fileHashHex, takeHasher } from '../../codec/hash.js';
import { type BatchCallbacks, type FileResult, fileResult, type PutItem } from '../../core/items.js';
import { IntegrityError } from '../../errors.js';
import { Cap } from '../../protocol/constants.js';
import { FdFile } from '../../util/fd_file.js';
import { BlockBuffers, readBlocks } from '../../util/file_blocks.js';
import { settle, takeWhileHealthy } from './batch.js';
import { blockHashes } from './dedup.js';
import { dedups } from './policy.js';
import { putResumable } from './resume.js';
import type { ServeClient } from './serve_client.js';

/**
 * Uploads the items (an array, or a shared WorkQueue taken from while this connection is
 * healthy); never rejects for a single file (see each result's `error`). Fresh files of
 * 16 MiB or more go through dedup when the server offers it: their block hashes are sent
 * first and only the blocks the server lacks cross the wire.
 */
export async function putFiles(
  client: ServeClient,
  items: Iterable<PutItem>,
  cb: BatchCallbacks<PutItem> = {},
): Promise<FileResult<PutItem>[]> {
  const buffers = new BlockBuffers();
  const dedupOffered = (client.caps & Cap.DEDUP) !== 0;
  const results: Promise<FileResult<PutItem>>[] = [];
  for (const item of takeWhileHealthy(client, items)) {
    if (item.resume) {
      const r = await putResumable(client, item, buffers, cb);
      cb.onFileDone?.(r);
      results.push(Promise.resolve(r));
      continue;
    }
    const t0 = performance.now();
    if (item.afterLoss && item.overwrite === false) {
      const earlier = await publishedEarlier(client, item, t0);
      if (earlier) {
        if (!earlier.error) cb.onBytes?.(earlier.bytes, item);
        cb.onFileDone?.(earlier);
        results.push(Promise.resolve(earlier));
        continue;
      }
    }
    let bytes = 0;
    let deduped = 0;
    let hasher = takeHasher();
    const sent = (async () => {
      const fh = FdFile.open(item.local, 'r');
      try {
        const size = fh.stat().size;
        // A striped file never reaches this batch: the pool takes those first (one connection).
        const dedup = dedups(size, { offered: dedupOffered, connections: 1, noDedup: item.noDedup });
        const pre = dedup && item.prehash ? await item.prehash : null;
        let dedupHashes: Uint8Array | undefined;
        if (pre && pre.size === size) {
          dedupHashes = pre.hashes;
          hasher = pre.whole;
        } else if (dedup) dedupHashes = await blockHashes(fh, size, buffers, hasher);
        // With dedup the file's hash came with the block hashes; if the file changes between
        // the two passes, the server's hash of what it got differs and the file fails.
        const hashing = dedupHashes === undefined;
        const ticket = await client.beginPut(
          item.remote,
          { size, overwrite: item.overwrite ?? true, dedupHashes },
          (emit) =>
            readBlocks(fh, 0, size, buffers, (block) => {
              if (hashing) hasher.update(block);
              bytes += block.length;
              cb.onBytes?.(block.length, item);
              return emit(block);
            }),
        );
        if (bytes !== size) throw new IntegrityError(`${item.local}: file changed size while being sent`);
        deduped = ticket.skippedBytes;
        // Wrapped: awaiting `sent` must not wait for the server's reply.
        return { reply: ticket.done };
      } finally {
        fh.close();
      }
    })();
    // Wait for the data to be written (not for the reply) before starting the next file.
    const done = sent.then(async ({ reply }) => {
      const remoteHash = await reply;
      const local = digestAndRecycle(hasher);
      if (remoteHash !== local) {
        throw new IntegrityError(`${item.remote}: server stored hash ${remoteHash}, sent ${local}`);
      }
      return local;
    });
    results.push(
      settle(item, t0, done, async () => {}).then((r) => {
        r.bytes = bytes;
        if (deduped > 0) r.deduped = deduped;
        cb.onFileDone?.(r);
        return r;
      }),
    );
    await sent.catch(() => {});
  }
  return Promise.all(results);
}

/**
 * A Put tried again after its connection was lost, without -f: the earlier try may have
 * published the file and only its Ok was lost, so a second Put would be refused as existing.
 * Done already when the destination hashes as the source; null to send it (not there, or
 * different: then the Put's own refusal stands). A lost connection fails it as lost.
 */
async function publishedEarlier(
  client: ServeClient,
  item: PutItem,
  t0: number,
): Promise<FileResult<PutItem> | null> {
  let stored: string;
  try {
    stored = await client.hash(item.remote);
  } catch {
    if (client.failure) return fileResult(item, t0, { error: client.failure });
    return null;
  }
  const source = await fileHashHex(item.local).catch(() => null);
  if (source !== stored) return null;
  return fileResult(item, t0, { hash: source, bytes: item.size ?? fs.statSync(item.local).size });
}
