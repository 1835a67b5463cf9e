/**
 * One large file striped across the pool's connections (PROTOCOL.md section 11, rule 17.2).
 *
 * The file is cut into ranges that the connections take from a shared queue, like files: a
 * faster connection takes more, and a range whose connection broke is taken again by another.
 * Every range lands in one temp file beside the destination (uploads: Truncate, then
 * PutChunked per range; downloads: GetChunked per range written at its offset). The temp file
 * gets the final name only when every range arrived and the BLAKE3 of the whole stored file
 * equals the source's; otherwise it is removed. A torn file never carries the final name.
 */

import { constants, unlinkSync } from 'node:fs';
import { fileHashHex } from '../../codec/hash.js';
import {
  type BatchCallbacks,
  type FileResult,
  fileResult,
  type GetItem,
  type PutItem,
} from '../../core/items.js';
import { IntegrityError, isNotFound } from '../../errors.js';
import { Cap, MAX_BLOCK } from '../../protocol/constants.js';
import { FdFile } from '../../util/fd_file.js';
import { BlockBuffers, readBlocks } from '../../util/file_blocks.js';
import { isReplacedPart, partNameFor, tempNameFor } from '../../util/temp_file.js';
import { WriteBatch } from '../../util/write_batch.js';
import { publishReceived } from './batch.js';
import { compareBlocks } from './blocks.js';
import type { ServeClient } from './serve_client.js';

const RANGE_MIN = 16 << 20;
const RANGE_MAX = 128 << 20;
/** Ranges in flight per connection: the next one is on the wire while the last is answered. */
const RANGES_PER_CONNECTION = 2;

/** One range of a striped file; `file` is the striped transfer it belongs to. */
export interface RangeItem<F> {
  file: F;
  offset: number;
  length: number;
}

/** A striped upload: the local file, open, and the remote temp file the ranges go into. */
export interface StripedPut {
  fh: FdFile;
  remoteTemp: string;
}

/** A striped download: the remote file and the local temp file, open, the ranges go into. */
export interface StripedGet {
  remote: string;
  fh: FdFile;
}

/** About four ranges per connection, 16 to 128 MiB each, on 4 MiB block boundaries. */
export function planRanges<F>(file: F, size: number, connections: number): RangeItem<F>[] {
  const target = Math.ceil(size / (connections * 4) / MAX_BLOCK) * MAX_BLOCK;
  const step = Math.min(RANGE_MAX, Math.max(RANGE_MIN, target));
  const out: RangeItem<F>[] = [];
  for (let offset = 0; offset < size; offset += step) {
    out.push({ file, offset, length: Math.min(step, size - offset) });
  }
  return out;
}

/**
 * Runs `one` for the ranges taken from `items` while the connection is healthy, at most
 * RANGES_PER_CONNECTION at a time; never rejects (see each result's error).
 */
async function rangeLanes<F>(
  client: ServeClient,
  items: Iterable<RangeItem<F>>,
  cb: BatchCallbacks<RangeItem<F>>,
  one: (r: RangeItem<F>, onBytes: (n: number) => void, buffers: BlockBuffers) => Promise<void>,
  buffers: BlockBuffers[] = [],
): Promise<FileResult<RangeItem<F>>[]> {
  const results: FileResult<RangeItem<F>>[] = [];
  const it = items[Symbol.iterator]();
  const lane = async (k: number): Promise<void> => {
    for (;;) {
      if (client.failure) return;
      const next = it.next();
      if (next.done) return;
      const r = next.value;
      const t0 = performance.now();
      let bytes = 0;
      let error: Error | null = null;
      try {
        await one(
          r,
          (n) => {
            bytes += n;
            cb.onBytes?.(n, r);
          },
          buffers[k],
        );
      } catch (err) {
        error = err as Error;
      }
      const res = fileResult(r, t0, { bytes, error });
      results.push(res);
      cb.onFileDone?.(res);
    }
  };
  await Promise.all(Array.from({ length: RANGES_PER_CONNECTION }, (_, k) => lane(k)));
  return results;
}

/** Sends ranges of a local file into the remote temp file (PutChunked, no Done after it). */
export function putRanges(
  client: ServeClient,
  items: Iterable<RangeItem<StripedPut>>,
  cb: BatchCallbacks<RangeItem<StripedPut>> = {},
): Promise<FileResult<RangeItem<StripedPut>>[]> {
  const buffers = Array.from({ length: RANGES_PER_CONNECTION }, () => new BlockBuffers());
  return rangeLanes(
    client,
    items,
    cb,
    async (r, onBytes, bufs) => {
      let sent = 0;
      await client.putChunked(r.file.remoteTemp, r.offset, r.length, (emit) =>
        readBlocks(r.file.fh, r.offset, r.length, bufs, (block) => {
          sent += block.length;
          onBytes(block.length);
          return emit(block);
        }),
      );
      if (sent !== r.length)
        throw new IntegrityError(`${r.file.fh.path}: file changed size while being sent`);
    },
    buffers,
  );
}

/** Receives ranges of a remote file into the local temp file at their offsets (GetChunked). */
export function getRanges(
  client: ServeClient,
  items: Iterable<RangeItem<StripedGet>>,
  cb: BatchCallbacks<RangeItem<StripedGet>> = {},
): Promise<FileResult<RangeItem<StripedGet>>[]> {
  return rangeLanes(client, items, cb, async (r, onBytes) => {
    let got = 0;
    await WriteBatch.run(r.file.fh, r.offset, (batch) =>
      client.getChunked(r.file.remote, r.offset, r.length, async (block) => {
        got += block.length;
        if (got > r.length)
          throw new IntegrityError(`${r.file.remote}: server sent more than the range asked for`);
        onBytes(block.length);
        await batch.add(block);
      }),
    );
    if (got !== r.length)
      throw new IntegrityError(`${r.file.remote}: received ${got} of ${r.length} bytes of a range`);
  });
}

/** Moves a connection's share of ranges (putRanges, getRanges). */
export type RangeBatch<F> = (
  c: ServeClient,
  items: Iterable<RangeItem<F>>,
  cb: BatchCallbacks<RangeItem<F>>,
) => Promise<FileResult<RangeItem<F>>[]>;

/** What the striping flow needs from the pool that runs it. */
export interface StripeHost {
  readonly connections: number;
  /** Effective caps (FAST skips the whole-file hash of downloads; SYNC fsyncs them). */
  readonly caps: number;
  /** The connection for single requests (Truncate, Hash). */
  control(): Promise<ServeClient>;
  /** Runs the ranges on all connections, retrying a lost connection's ranges; throws the first failure. */
  runRanges<F>(
    ranges: RangeItem<F>[],
    batch: RangeBatch<F>,
    onBytes: (n: number, lane?: number) => void,
  ): Promise<void>;
  /** Removes a remote temp file (the protocol has no delete), bounded in time. */
  removeRemote(path: string): Promise<void>;
  /**
   * Marks a remote temp file as being written until the returned release is called: if the
   * copy is given up with Ctrl-C meanwhile, the pool removes it (and keeps it marked until then).
   */
  holdTemp(path: string): () => void;
}

/**
 * The 4 MiB blocks of `remote` (an earlier striped upload's part file) that already hold the
 * local file's bytes, by comparing the server's Hash of each block with the local one; null
 * when there is no such file. Blocks are compared, not prefixes: the ranges of an interrupted
 * striped upload each stop part way, leaving a hole after every one.
 */
async function blocksPresent(
  control: ServeClient,
  remote: string,
  fh: FdFile,
  size: number,
): Promise<boolean[] | null> {
  // An earlier striped upload of this very file made its part file this size at once; any
  // other size is another file's, and Truncate starts it afresh.
  // Only "not there" means no part file: any other failure (a lost connection, an I/O error)
  // fails the file and leaves the part file for a rerun, rather than Truncate zeroing it.
  const st = await control.stat(remote).catch((err) => {
    if (isNotFound(err)) return null;
    throw err;
  });
  if (!st || st.isDir || st.size !== size || size === 0) return null;
  const present: boolean[] = [];
  await compareBlocks(control, remote, fh, size, 'differ', (_view, _offset, same) => {
    present.push(same);
    return true;
  });
  return present;
}

/** The parts of `ranges` whose blocks are not `present`, split where a present block lies. */
export function missingRanges<F>(ranges: RangeItem<F>[], present: readonly boolean[] | null): RangeItem<F>[] {
  if (!present) return ranges;
  const out: RangeItem<F>[] = [];
  for (const r of ranges) {
    let start = -1;
    const end = r.offset + r.length;
    for (let at = r.offset; at < end; at += MAX_BLOCK) {
      const have = present[at / MAX_BLOCK] === true;
      if (!have && start < 0) start = at;
      if (have && start >= 0) {
        out.push({ file: r.file, offset: start, length: at - start });
        start = -1;
      }
    }
    if (start >= 0) out.push({ file: r.file, offset: start, length: end - start });
  }
  return out;
}

/**
 * One large upload over every connection: Truncate the remote part file, PutChunked its
 * ranges from all connections, then compare the stored file's BLAKE3 with the source's
 * (both computed at once). The caller renames the part file (`publishFrom`), as for -C.
 *
 * The part file has a fixed name (`.NAME.bcmr-part`) and an upload cut off (a lost link, a
 * killed client) leaves it: a plain rerun, without -C, finds it and sends only the 4 MiB
 * blocks it does not already hold. The whole-file hash still decides: a part file
 * that hashes wrong in the end is removed, never published.
 */
export async function putStriped(
  host: StripeHost,
  item: PutItem,
  cb: BatchCallbacks<PutItem>,
): Promise<FileResult<PutItem>> {
  const t0 = performance.now();
  const remoteTemp = partNameFor(item.remote);
  let bytes = 0;
  let fh: FdFile | null = null;
  const release = host.holdTemp(remoteTemp);
  try {
    fh = FdFile.open(item.local, 'r');
    const size = fh.stat().size;
    const control = await host.control();
    const file = fh;
    const attempt = async (present: boolean[] | null) => {
      // Our server's Truncate zeroes the file: only a fresh part file is truncated.
      if (!present) await control.truncate(remoteTemp, size);
      const ranges = missingRanges(planRanges({ fh: file, remoteTemp }, size, host.connections), present);
      await host.runRanges(ranges, putRanges, (n, lane) => {
        bytes += n;
        cb.onBytes?.(n, item, lane);
      });
      const [stored, local] = await Promise.all([
        host.control().then((c) => c.hash(remoteTemp)),
        fileHashHex(item.local),
      ]);
      if (stored !== local) {
        throw new IntegrityError(`${item.remote}: striped copy hashes to ${stored}, source ${local}`);
      }
      return { local, kept: size - ranges.reduce((n, r) => n + r.length, 0) };
    };
    const present = await blocksPresent(control, remoteTemp, fh, size);
    // A continued part file that the server replaced (not ours: see openOwnForWrite) or that
    // hashes wrong in the end is started again, once, from a fresh Truncate.
    const { local, kept } = await attempt(present).catch((err: Error) => {
      if (present && (err instanceof IntegrityError || isReplacedPart(err))) return attempt(null);
      throw err;
    });
    return fileResult(
      item,
      t0,
      { bytes, hash: local },
      { publishFrom: remoteTemp, ...(kept > 0 ? { resumedFrom: kept } : {}) },
    );
  } catch (err) {
    // A part file that hashed wrong is removed; one given up with Ctrl-C is removed by the pool
    // (holdTemp). One cut off (lost link, dead connections) stays for the rerun.
    if (err instanceof IntegrityError) await host.removeRemote(remoteTemp);
    return fileResult(item, t0, { bytes, error: err as Error });
  } finally {
    release();
    (fh as FdFile | null)?.close();
  }
}

/**
 * One large download over every connection: GetChunked ranges into a local temp file at
 * their offsets; unless FAST, the whole temp file must hash as the server's file before it
 * gets the final name.
 */
export async function getStriped(
  host: StripeHost,
  item: GetItem,
  cb: BatchCallbacks<GetItem>,
): Promise<FileResult<GetItem>> {
  const t0 = performance.now();
  const tmp = tempNameFor(item.local);
  let bytes = 0;
  let fh: FdFile | null = null;
  try {
    fh = FdFile.open(tmp, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW);
    fh.truncate(item.size);
    await host.runRanges(
      planRanges({ remote: item.remote, fh }, item.size, host.connections),
      getRanges,
      (n, lane) => {
        bytes += n;
        cb.onBytes?.(n, item, lane);
      },
    );
    let hash: string | null = null;
    if ((host.caps & Cap.FAST) === 0) {
      const [remoteHash, local] = await Promise.all([
        host.control().then((c) => c.hash(item.remote)),
        fileHashHex(tmp),
      ]);
      if (remoteHash !== local) {
        throw new IntegrityError(`${item.remote}: striped copy hashes to ${local}, server ${remoteHash}`);
      }
      hash = local;
    }
    await publishReceived(fh, item.local, item.overwrite ?? true, (host.caps & Cap.SYNC) !== 0);
    return fileResult(item, t0, { bytes, hash });
  } catch (err) {
    (fh as FdFile | null)?.close();
    try {
      unlinkSync(tmp);
    } catch {
      // Never created.
    }
    return fileResult(item, t0, { bytes, error: err as Error });
  }
}
