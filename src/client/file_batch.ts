/**
 * Pipelined transfers of many local files over one ServeClient, with per-file results and
 * byte progress. Downloads land in a temp file beside the destination and are renamed into
 * place only after the byte count matches the expected size and (unless FAST) the server's
 * hash matches ours; uploads are verified by comparing the server's Ok hash with the source's.
 */
import { constants, unlinkSync } from 'node:fs';
import path from 'node:path';
import { Blake3Hasher, blake3Hex, blake3Raw } from '../codec/hash.js';
import type { BatchCallbacks, FileResult, GetItem, Prehash, PutItem } from '../core/items.js';
import { IntegrityError, isNotFound } from '../errors.js';
import { Cap, MAX_BLOCK } from '../protocol/constants.js';
import { FdFile } from '../util/fd_file.js';
import { BlockBuffers, RELEASED, readBlocks } from '../util/file_blocks.js';
import { PART_SUFFIX, publish, tempNameFor } from '../util/temp_file.js';
import { WriteBatch } from '../util/write_batch.js';
import type { ServeClient } from './serve_client.js';

/** Files of a getFiles batch requested but not finished, at most. */
const MAX_ACTIVE_GETS = 512;
/**
 * Bytes requested but not received, at most (one file may exceed it): keeps a connection from
 * claiming far more of a shared queue than it can receive soon.
 */
const MAX_ACTIVE_GET_BYTES = 16 << 20;

/** Takes items while the connection is healthy, so a shared queue keeps the rest for others. */
function* takeWhileHealthy<T>(client: ServeClient, items: Iterable<T>): Generator<T> {
  const it = items[Symbol.iterator]();
  while (!client.failure) {
    const r = it.next();
    if (r.done) return;
    yield r.value;
  }
}

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
    const hasher = fast ? null : new Blake3Hasher();
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
        const local = hasher ? hasher.digest('hex') : null;
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

/** Where a resumable download collects its bytes (PROTOCOL.md 17.2), found again by a rerun. */
export function partNameFor(dest: string): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}${PART_SUFFIX}`);
}

/**
 * Bytes of the longest prefix of `local`'s first `have` bytes whose 4 MiB blocks hash as the
 * same range of `remotePath` on the server (Hash with offset and limit, pipelined). Stops at
 * the first bad block: nothing after it is trusted. The kept bytes are fed to `whole`.
 */
async function verifiedPrefix(
  client: ServeClient,
  remotePath: string,
  local: FdFile,
  have: number,
  buf: Buffer,
  whole: Blake3Hasher,
): Promise<number> {
  const blocks: [number, number][] = [];
  for (let off = 0; off < have; off += MAX_BLOCK) blocks.push([off, Math.min(MAX_BLOCK, have - off)]);
  const remote = await Promise.all(blocks.map(([o, l]) => client.hash(remotePath, o, l)));
  let keep = 0;
  for (const [i, [o, l]] of blocks.entries()) {
    const view = buf.subarray(0, l);
    if ((await local.read(buf, l, o)) !== l || blake3Hex(view) !== remote[i]) break;
    whole.update(view);
    keep = o + l;
  }
  return keep;
}

/**
 * A -C download: keeps the partial file's longest prefix whose 4 MiB blocks hash as the
 * server's (checked block by block, pipelined; the first bad block and all after it are
 * dropped, never trusted), fetches the rest with Get at that offset, and publishes only when
 * the whole file is there and the received part matches the server's hash. On failure the
 * partial file stays for the next run.
 */
async function getResumable(
  client: ServeClient,
  item: GetItem,
  cb: BatchCallbacks<GetItem>,
  fast: boolean,
  sync: boolean,
): Promise<FileResult<GetItem>> {
  const t0 = performance.now();
  const part = partNameFor(item.local);
  let got = 0;
  let keep = 0;
  let fh: FdFile | null = null;
  try {
    fh = FdFile.open(part, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW);
    const file = fh;
    const have = Math.min(file.stat().size, item.size);
    const whole = new Blake3Hasher();
    keep = await verifiedPrefix(client, item.remote, file, have, Buffer.allocUnsafe(MAX_BLOCK), whole);
    file.truncate(keep);
    cb.onBytes?.(keep, item);
    const rest = new Blake3Hasher();
    // Run: a failed attempt's last write ends before a retry reads the part file again.
    const remoteHash = await WriteBatch.run(file, keep, (batch) =>
      client.get(item.remote, keep, async (block) => {
        if (keep + got + block.length > item.size) {
          throw new IntegrityError(`${item.remote}: server sent more than the ${item.size} bytes announced`);
        }
        got += block.length;
        whole.update(block);
        rest.update(block);
        cb.onBytes?.(block.length, item);
        await batch.add(block);
      }),
    );
    if (keep + got !== item.size) {
      throw new IntegrityError(`${item.remote}: received ${keep + got} of ${item.size} bytes`);
    }
    if (!fast && remoteHash !== rest.digest('hex')) {
      throw new IntegrityError(`${item.remote}: hash mismatch after offset ${keep}`);
    }
    fh = null;
    await publishReceived(file, item.local, item.overwrite ?? true, sync);
    return {
      item,
      bytes: got,
      hash: whole.digest('hex'),
      error: null,
      ms: performance.now() - t0,
      resumedFrom: keep,
    };
  } catch (err) {
    (fh as FdFile | null)?.close();
    return {
      item,
      bytes: got,
      hash: null,
      error: err as Error,
      ms: performance.now() - t0,
      resumedFrom: keep,
    };
  }
}

/**
 * A -C upload into the remote part file: its existing prefix is checked block by block against
 * the local file (Hash with offset and limit, pipelined) and kept up to the first bad block; the
 * rest goes with PutChunked, which writes as bytes arrive, so an interruption keeps what was
 * sent. The finished part file must hash as the local file; renaming it is the caller's job
 * (the protocol has no rename: PROTOCOL.md 17.2).
 */
async function putResumable(
  client: ServeClient,
  item: PutItem,
  buffers: BlockBuffers,
  cb: BatchCallbacks<PutItem>,
): Promise<FileResult<PutItem>> {
  const t0 = performance.now();
  const part = partNameFor(item.remote);
  let keep = 0;
  let sent = 0;
  const fh = FdFile.open(item.local, 'r');
  try {
    const size = fh.stat().size;
    const st = await client.stat(part).catch((err: unknown) => {
      if (isNotFound(err)) return null;
      throw err;
    });
    const have = st && !st.isDir ? st.size : 0;
    const whole = new Blake3Hasher();
    if (have > size) await client.truncate(part, 0);
    else keep = await verifiedPrefix(client, part, fh, have, buffers.bufs[0], whole);
    cb.onBytes?.(keep, item);
    await client.putChunked(part, keep, size - keep, (emit) =>
      readBlocks(fh, keep, size - keep, buffers, (block) => {
        whole.update(block);
        sent += block.length;
        cb.onBytes?.(block.length, item);
        return emit(block);
      }),
    );
    if (keep + sent !== size) throw new IntegrityError(`${item.local}: file changed size while being sent`);
    const local = whole.digest('hex');
    const stored = await client.hash(part);
    if (stored !== local)
      throw new IntegrityError(`${item.remote}: partial file hashes to ${stored}, sent ${local}`);
    return {
      item,
      bytes: sent,
      hash: local,
      error: null,
      ms: performance.now() - t0,
      resumedFrom: keep,
      publishFrom: part,
    };
  } catch (err) {
    return {
      item,
      bytes: sent,
      hash: null,
      error: err as Error,
      ms: performance.now() - t0,
      resumedFrom: keep,
    };
  } finally {
    fh.close();
  }
}

/** Fresh uploads at least this large are offered through dedup (PROTOCOL.md section 9). */
export const DEDUP_MIN_BYTES = 16 << 20;

/** A file's dedup block hashes and its whole hash, computed ahead of its upload. */
/** Hashes a file's 4 MiB blocks (and the whole file) for a later dedup Put; null on failure. */
export async function prehashFile(file: string): Promise<Prehash | null> {
  try {
    const fh = FdFile.open(file, 'r');
    try {
      const size = fh.stat().size;
      const whole = new Blake3Hasher();
      return { size, hashes: await blockHashes(fh, size, new BlockBuffers(), whole), whole };
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
async function blockHashes(
  fh: FdFile,
  size: number,
  buffers: BlockBuffers,
  whole: Blake3Hasher,
): Promise<Uint8Array> {
  const count = Math.ceil(size / MAX_BLOCK);
  const out = Buffer.allocUnsafe(count * 32);
  let i = 0;
  await readBlocks(fh, 0, size, buffers, (block) => {
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
    let bytes = 0;
    let deduped = 0;
    let hasher = new Blake3Hasher();
    const sent = (async () => {
      const fh = FdFile.open(item.local, 'r');
      try {
        const size = fh.stat().size;
        const dedup = dedupOffered && !item.noDedup && size >= DEDUP_MIN_BYTES;
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
      const local = hasher.digest('hex');
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

async function settle<T>(
  item: T,
  t0: number,
  done: Promise<string | null>,
  cleanup: () => Promise<void>,
): Promise<FileResult<T>> {
  try {
    const hash = await done;
    return { item, bytes: 0, hash, error: null, ms: performance.now() - t0 };
  } catch (err) {
    await cleanup();
    return { item, bytes: 0, hash: null, error: err as Error, ms: performance.now() - t0 };
  }
}
