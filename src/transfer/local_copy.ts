/**
 * Local -> local: each file is copied with copyFile (copy_file_range / reflink where the
 * kernel offers it) to a temp name beside the destination, then published.
 */
import fs from 'node:fs';
import { fileHashHex } from '../codec/hash.js';
import { type BatchCallbacks, type FileResult, fileResult } from '../core/items.js';
import { IntegrityError, InterruptedError } from '../errors.js';
import { publish, tempNameFor } from '../util/temp_file.js';
import type { PlannedFile } from './plan.js';

export interface LocalCopyOptions {
  overwrite: boolean;
  verify: boolean;
  /** --sync: fsync each copy before it gets its name. */
  sync: boolean;
  signal: AbortSignal;
}

export async function copyLocalFiles(
  files: readonly PlannedFile[],
  opts: LocalCopyOptions,
  cb: BatchCallbacks<PlannedFile>,
): Promise<FileResult<PlannedFile>[]> {
  const results: FileResult<PlannedFile>[] = [];
  for (const f of files) {
    const t0 = performance.now();
    if (opts.signal.aborted) {
      results.push(fileResult(f, -1, { error: new InterruptedError() }));
      continue;
    }
    const tmp = tempNameFor(f.dest);
    try {
      await fs.promises.copyFile(f.src, tmp, fs.constants.COPYFILE_EXCL);
      const size = fs.statSync(tmp).size;
      if (opts.sync) {
        const fd = fs.openSync(tmp, 'r+');
        try {
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
      }
      let hash: string | null = null;
      if (opts.verify) {
        const [a, b] = await Promise.all([fileHashHex(f.src), fileHashHex(tmp)]);
        if (a !== b) throw new IntegrityError(`verify failed: ${f.dest} hashes to ${b}, source ${a}`);
        hash = a;
      }
      publish(tmp, f.dest, opts.overwrite);
      cb.onBytes?.(size, f);
      results.push(fileResult(f, t0, { bytes: size, hash }));
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      results.push(fileResult(f, t0, { error: err as Error }));
    }
    // For progress only: the caller takes every result from the returned list.
    cb.onFileDone?.(results[results.length - 1]);
  }
  return results;
}
