/**
 * sync's modified files as deltas, with the frames protocol v2 already has: the destination's
 * earlier version is copied beside it (a temp file of ours), its ranges are compared with the
 * source's by BLAKE3 (Hash with offset and limit: 4 MiB blocks, then 64 KiB pieces of the
 * blocks that differ), only the differing ranges travel (PutChunked / GetChunked, spread over
 * the pool's connections as striping's ranges are), and the temp file is published only when
 * its whole BLAKE3 is the source's. An edit inside a block costs 64 KiB, not 4 MiB; an insertion
 * that shifts the rest costs the rest (the comparison is by offset, not rolling as rsync's).
 */
import { COPYFILE_EXCL, COPYFILE_FICLONE } from 'node:constants';
import { copyFileSync, unlinkSync } from 'node:fs';
import { fileHashHex } from '../../codec/hash.js';
import {
  type BatchCallbacks,
  type FileResult,
  fileResult,
  type GetItem,
  type PutItem,
} from '../../core/items.js';
import { IntegrityError } from '../../errors.js';
import { Cap } from '../../protocol/constants.js';
import { FdFile } from '../../util/fd_file.js';
import { type ShText, sh } from '../../util/shell.js';
import { tempNameFor } from '../../util/temp_file.js';
import { trace } from '../../util/trace.js';
import { publishReceived } from './batch.js';
import { compareBlocks } from './blocks.js';
import type { ServeClient } from './serve_client.js';
import { getRanges, putRanges, type RangeItem, type StripeHost } from './stripe.js';

/** Files smaller than this travel whole: the round trips of a comparison would cost more. */
export const DELTA_MIN_BYTES = 1 << 20;
/** The finer comparison inside a 4 MiB block that differs. */
const FINE_BLOCK = 64 << 10;
/** Ranges longer than this are cut so the pool's connections can share them. */
const MAX_RANGE = 16 << 20;

/** What a delta upload needs from the pool beyond striping's: one shell command there. */
export interface DeltaHost extends StripeHost {
  script(text: ShText): Promise<string>;
}

/**
 * The ranges of `local`'s `[0, length)` whose bytes differ from the same ranges of
 * `remotePath` on the server: 4 MiB blocks, then 64 KiB pieces of each that differs; adjacent
 * pieces merged.
 */
export async function changedRanges(
  client: ServeClient,
  remotePath: string,
  local: FdFile,
  length: number,
): Promise<{ offset: number; length: number }[]> {
  const coarse: [number, number][] = [];
  await compareBlocks(client, remotePath, local, length, 'differ', (view, offset, same) => {
    if (!same) coarse.push([offset, view.length]);
    return true;
  });
  trace(`delta: coarse ${coarse.length}`);
  const fine: { offset: number; length: number }[][] = await Promise.all(
    coarse.map(async ([start, len]) => {
      const out: { offset: number; length: number }[] = [];
      await compareBlocks(
        client,
        remotePath,
        local,
        len,
        'differ',
        (view, offset, same) => {
          if (!same) out.push({ offset, length: view.length });
          return true;
        },
        { start, blockSize: FINE_BLOCK },
      );
      return out;
    }),
  );
  const merged: { offset: number; length: number }[] = [];
  for (const r of fine.flat()) {
    const last = merged[merged.length - 1];
    if (last && last.offset + last.length === r.offset) last.length += r.length;
    else merged.push({ ...r });
  }
  return merged;
}

/** `ranges` cut to at most MAX_RANGE each, for the pool's connections to share. */
function spread<F>(file: F, ranges: { offset: number; length: number }[]): RangeItem<F>[] {
  const out: RangeItem<F>[] = [];
  for (const r of ranges)
    for (let at = r.offset; at < r.offset + r.length; at += MAX_RANGE)
      out.push({ file, offset: at, length: Math.min(MAX_RANGE, r.offset + r.length - at) });
  return out;
}

/**
 * An upload whose destination exists (`item.delta.oldSize` bytes) and differs. Its temp file
 * starts as a copy of the destination's first min(old, new) bytes, made on the remote by one
 * shell command (umask 077, noclobber: a file of ours alone); the caller renames it in
 * (`publishFrom`), as for -C and striped uploads.
 */
export async function putDelta(
  host: DeltaHost,
  item: PutItem & { delta: { oldSize: number } },
  cb: BatchCallbacks<PutItem>,
): Promise<FileResult<PutItem>> {
  const t0 = performance.now();
  const tmp = tempNameFor(item.remote);
  let sent = 0;
  let made = false;
  let fh: FdFile | null = null;
  const release = host.holdTemp(tmp);
  try {
    fh = FdFile.open(item.local, 'r');
    const size = fh.stat().size;
    const keep = Math.min(item.delta.oldSize, size);
    // The copy (one ssh command there) and the comparison (with the destination itself, whose
    // first bytes the copy will hold) run at once; the ranges go into the copy once it is made.
    const copying = host.script(sh`umask 077; set -C; head -c ${keep} -- ${item.remote} > ${tmp}\n`);
    copying.catch(() => {});
    const control = await host.control();
    trace('delta: control');
    const ranges = await changedRanges(control, item.remote, fh, keep).finally(() => copying.catch(() => {}));
    trace(`delta: ${ranges.length} ranges found`);
    await copying;
    trace('delta: base copied');
    made = true;
    if (size > keep) ranges.push({ offset: keep, length: size - keep });
    await host.runRanges(spread({ fh, remoteTemp: tmp }, ranges), putRanges, (n, lane) => {
      sent += n;
      cb.onBytes?.(n, item, lane);
    });
    trace('delta: ranges sent');
    const [stored, local] = await Promise.all([
      host.control().then((c) => c.hash(tmp)),
      fileHashHex(item.local),
    ]);
    trace('delta: verified');
    if (stored !== local)
      throw new IntegrityError(`${item.remote}: delta copy hashes to ${stored}, source ${local}`);
    return fileResult(item, t0, { bytes: sent, hash: local }, { publishFrom: tmp, kept: size - sent });
  } catch (err) {
    if (made) await host.removeRemote(tmp);
    return fileResult(item, t0, { bytes: sent, error: err as Error });
  } finally {
    release();
    (fh as FdFile | null)?.close();
  }
}

/**
 * A download whose destination exists here (`item.delta.oldSize` bytes) and differs: its temp
 * file starts as a copy of it (a reflink where the filesystem has them), takes the new size,
 * and receives only the ranges that differ; published when it hashes as the server's file.
 */
export async function getDelta(
  host: StripeHost,
  item: GetItem & { delta: { oldSize: number } },
  cb: BatchCallbacks<GetItem>,
): Promise<FileResult<GetItem>> {
  const t0 = performance.now();
  const tmp = tempNameFor(item.local);
  let got = 0;
  let fh: FdFile | null = null;
  try {
    copyFileSync(item.local, tmp, COPYFILE_EXCL | COPYFILE_FICLONE);
    fh = FdFile.open(tmp, 'r+');
    const keep = Math.min(item.delta.oldSize, item.size);
    fh.truncate(item.size);
    const control = await host.control();
    const ranges = await changedRanges(control, item.remote, fh, keep);
    if (item.size > keep) ranges.push({ offset: keep, length: item.size - keep });
    await host.runRanges(spread({ remote: item.remote, fh }, ranges), getRanges, (n, lane) => {
      got += n;
      cb.onBytes?.(n, item, lane);
    });
    const [remote, local] = await Promise.all([
      host.control().then((c) => c.hash(item.remote)),
      fileHashHex(tmp),
    ]);
    if (remote !== local)
      throw new IntegrityError(`${item.remote}: delta copy hashes to ${local}, server ${remote}`);
    await publishReceived(fh, item.local, true, (host.caps & Cap.SYNC) !== 0);
    fh = null;
    return fileResult(item, t0, { bytes: got, hash: local }, { kept: item.size - got });
  } catch (err) {
    (fh as FdFile | null)?.close();
    try {
      unlinkSync(tmp);
    } catch {
      // Never made.
    }
    return fileResult(item, t0, { bytes: got, error: err as Error });
  }
}
