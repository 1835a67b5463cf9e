/** -C: resumable downloads and uploads through `.NAME.bcmr-part` files (PROTOCOL.md 17.2). */
import { Blake3Hasher } from '../../codec/hash.js';
import {
  type BatchCallbacks,
  type FileResult,
  fileResult,
  type GetItem,
  type PutItem,
} from '../../core/items.js';
import { IntegrityError, isNotFound } from '../../errors.js';
import { FdFile } from '../../util/fd_file.js';
import { type BlockBuffers, readBlocks } from '../../util/file_blocks.js';
import { isReplacedPart, openPartFile, partNameFor } from '../../util/temp_file.js';
import { WriteBatch } from '../../util/write_batch.js';
import { publishReceived } from './batch.js';
import { compareBlocks } from './blocks.js';
import type { ServeClient } from './serve_client.js';

/**
 * Bytes of the longest prefix of `local`'s first `have` bytes whose 4 MiB blocks hash as the
 * same range of `remotePath` on the server (blocks.ts). Stops at the first bad block: nothing
 * after it is trusted. The kept bytes are fed to `whole`.
 */
async function verifiedPrefix(
  client: ServeClient,
  remotePath: string,
  local: FdFile,
  have: number,
  whole: Blake3Hasher,
): Promise<number> {
  let keep = 0;
  await compareBlocks(client, remotePath, local, have, 'throw', (view, offset, same) => {
    if (!same) return false;
    whole.update(view);
    keep = offset + view.length;
    return true;
  });
  return keep;
}

/**
 * A -C download: keeps the partial file's longest prefix whose 4 MiB blocks hash as the
 * server's (checked block by block, pipelined; the first bad block and all after it are
 * dropped, never trusted), fetches the rest with Get at that offset, and publishes only when
 * the whole file is there and the received part matches the server's hash. On failure the
 * partial file stays for the next run.
 */
export async function getResumable(
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
    // Only a part file of ours is continued; anything else there is replaced (openPartFile).
    fh = FdFile.fromFd(openPartFile(part).fd, part);
    const file = fh;
    const have = Math.min(file.stat().size, item.size);
    const whole = new Blake3Hasher();
    keep = await verifiedPrefix(client, item.remote, file, have, whole);
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
    return fileResult(item, t0, { bytes: got, hash: whole.digest('hex') }, { resumedFrom: keep });
  } catch (err) {
    (fh as FdFile | null)?.close();
    return fileResult(item, t0, { bytes: got, error: err as Error }, { resumedFrom: keep });
  }
}

/**
 * A -C upload into the remote part file: its existing prefix is checked block by block against
 * the local file (Hash with offset and limit, pipelined) and kept up to the first bad block; the
 * rest goes with PutChunked, which writes as bytes arrive, so an interruption keeps what was
 * sent. The finished part file must hash as the local file; renaming it is the caller's job
 * (the protocol has no rename: PROTOCOL.md 17.2).
 */
export async function putResumable(
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
    let whole = new Blake3Hasher();
    if (have > size) await client.truncate(part, 0);
    else keep = await verifiedPrefix(client, part, fh, have, whole);
    cb.onBytes?.(keep, item);
    const send = () =>
      client.putChunked(part, keep, size - keep, (emit) =>
        readBlocks(fh, keep, size - keep, buffers, (block) => {
          whole.update(block);
          sent += block.length;
          cb.onBytes?.(block.length, item);
          return emit(block);
        }),
      );
    await send().catch(async (err: unknown) => {
      // The server replaced a part file that was not ours (openOwnForWrite): the prefix we
      // verified is gone with it, so the whole file goes again, once.
      if (keep === 0 || !isReplacedPart(err)) throw err;
      keep = 0;
      sent = 0;
      whole = new Blake3Hasher();
      await send();
    });
    if (keep + sent !== size) throw new IntegrityError(`${item.local}: file changed size while being sent`);
    const local = whole.digest('hex');
    const stored = await client.hash(part);
    if (stored !== local)
      throw new IntegrityError(`${item.remote}: partial file hashes to ${stored}, sent ${local}`);
    return fileResult(item, t0, { bytes: sent, hash: local }, { resumedFrom: keep, publishFrom: part });
  } catch (err) {
    return fileResult(item, t0, { bytes: sent, error: err as Error }, { resumedFrom: keep });
  } finally {
    fh.close();
  }
}
