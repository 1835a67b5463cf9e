/**
 * What every batch of file transfers over one ServeClient shares: taking work while the
 * connection is healthy, and publishing a received file.
 */
import path from 'node:path';
import { type FileResult, fileResult } from '../../core/items.js';
import { FdFile } from '../../util/fd_file.js';
import { publish } from '../../util/temp_file.js';
import type { ServeClient } from './serve_client.js';

/** Takes items while the connection is healthy, so a shared queue keeps the rest for others. */
export function* takeWhileHealthy<T>(client: ServeClient, items: Iterable<T>): Generator<T> {
  const it = items[Symbol.iterator]();
  while (!client.failure) {
    const r = it.next();
    if (r.done) return;
    yield r.value;
  }
}

/**
 * Closes a received, verified file and gives it its final name. With SYNC the receiver (here,
 * us) makes the file durable before it gets its name, and the directory entry after.
 */
export async function publishReceived(
  fh: FdFile,
  dest: string,
  overwrite: boolean,
  sync: boolean,
): Promise<void> {
  if (sync) await fh.sync();
  fh.close();
  publish(fh.path, dest, overwrite);
  if (sync) await FdFile.syncDir(path.dirname(dest));
}

/**
 * A pipelined file's result once its reply settles: the hash `done` resolves with, or its
 * error (after `cleanup`). Bytes and extras are filled in by the caller.
 */
export async function settle<T>(
  item: T,
  t0: number,
  done: Promise<string | null>,
  cleanup: () => Promise<void>,
): Promise<FileResult<T>> {
  try {
    const hash = await done;
    return fileResult(item, t0, { hash });
  } catch (err) {
    await cleanup();
    return fileResult(item, t0, { error: err as Error });
  }
}
