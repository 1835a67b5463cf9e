/**
 * Pipelined downloads of many files over one ServeClient, with per-file results and byte
 * progress. A download lands in a temp file beside the destination and is renamed into place
 * only after the byte count matches the expected size and (unless FAST) the server's hash
 * matches ours. -C downloads are resume.ts's.
 */
import { constants, unlinkSync } from 'node:fs';
import { digestAndRecycle, takeHasher } from '../../codec/hash.js';
import type { BatchCallbacks, FileResult, GetItem } from '../../core/items.js';
import { IntegrityError } from '../../errors.js';
import { Cap } from '../../protocol/constants.js';
import { FdFile } from '../../util/fd_file.js';
import { tempNameFor } from '../../util/temp_file.js';
import { WriteBatch } from '../../util/write_batch.js';
import { publishReceived, settle, takeWhileHealthy } from './batch.js';
import { getResumable } from './resume.js';
import type { ServeClient } from './serve_client.js';

/** Files of a getFiles batch requested but not finished, at most. */
const MAX_ACTIVE_GETS = 512;
/**
 * Bytes requested but not received, at most (one file may exceed it): keeps a connection from
 * claiming far more of a shared queue than it can receive soon.
 */
const MAX_ACTIVE_GET_BYTES = 16 << 20;

/**
 * Downloads the items (an array, or a shared WorkQueue taken from while this connection is
 * healthy); never rejects for a single file (see each result's `error`).
 */
export async function getFiles(
  client: ServeClient,
  items: Iterable<GetItem>,
  cb: BatchCallbacks<GetItem> = {},
): Promise<FileResult<GetItem>[]> {
  const fast = (client.caps & Cap.FAST) !== 0;
  const sync = (client.caps & Cap.SYNC) !== 0;
  const results: Promise<FileResult<GetItem>>[] = [];
  // Per-file state (hasher, closures) exists only for the files in flight, not the whole list.
  let active = 0;
  let activeBytes = 0;
  let slotFreed: (() => void) | null = null;
  const full = () => active >= MAX_ACTIVE_GETS || (active > 0 && activeBytes >= MAX_ACTIVE_GET_BYTES);
  const source = takeWhileHealthy(client, items);
  for (;;) {
    while (full()) await new Promise<void>((r) => (slotFreed = r));
    const next = source.next();
    if (next.done) break;
    const item = next.value;
    active++;
    activeBytes += item.size;
    const finished = (r: FileResult<GetItem>): FileResult<GetItem> => {
      active--;
      activeBytes -= item.size;
      slotFreed?.();
      cb.onFileDone?.(r);
      return r;
    };
    if (item.resume) {
      results.push(getResumable(client, item, cb, fast, sync).then(finished));
      continue;
    }
    const t0 = performance.now();
    const tmp = tempNameFor(item.local);
    let fh: FdFile | null = null;
    let got = 0;
    // Pieces are gathered and written while the next ones arrive (see WriteBatch).
    let batch: WriteBatch | null = null;
    // FAST: no hash on either side (the size is still checked); -V hashes the result later.
    const hasher = fast ? null : takeHasher();
    const openTmp = (): FdFile => {
      fh ??= FdFile.open(
        tmp,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      );
      return fh;
    };
    const done = client
      .get(item.remote, 0, async (block) => {
        if (got + block.length > item.size) {
          throw new IntegrityError(`${item.remote}: server sent more than the ${item.size} bytes announced`);
        }
        batch ??= new WriteBatch(openTmp(), 0);
        got += block.length;
        hasher?.update(block);
        cb.onBytes?.(block.length, item);
        await batch.add(block);
      })
      .then(async (remoteHash) => {
        if (batch) {
          await batch.flush();
          await batch.settle();
        }
        if (got !== item.size) {
          throw new IntegrityError(`${item.remote}: received ${got} of ${item.size} bytes`);
        }
        const local = hasher ? digestAndRecycle(hasher) : null;
        if (local !== null && remoteHash !== local) {
          throw new IntegrityError(`${item.remote}: hash mismatch (server ${remoteHash}, received ${local})`);
        }
        await publishReceived(openTmp(), item.local, item.overwrite ?? true, sync);
        return local;
      });
    results.push(
      settle(item, t0, done, async () => {
        await (batch as WriteBatch | null)?.settle().catch(() => {});
        (fh as FdFile | null)?.close();
        try {
          unlinkSync(tmp);
        } catch {
          // Never created, or already gone.
        }
      }).then((r) => {
        r.bytes = got;
        return finished(r);
      }),
    );
  }
  return Promise.all(results);
}
