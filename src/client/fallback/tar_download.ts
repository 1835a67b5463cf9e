/**
 * Fallback downloads as one tar stream: the remote runs `tar -c` over the list of files we ask
 * for (NUL-separated on stdin, so any name survives), and each entry is written here through
 * the same temp file + size check + publish path as a bcmr download.
 *
 * A hostile or broken remote cannot steer a write: an entry's name is only ever a key into the
 * files we asked for, never a path. A name we did not ask for (absolute, `..`, anything else)
 * stops the stream and fails the files not yet received; a requested name that arrives as
 * something other than a regular file (symlink, device, FIFO, directory) fails that file; a
 * hard link is accepted only to a file this stream already delivered.
 */
import { closeSync, constants, copyFileSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { extract as tarExtract } from 'tar-stream';
import { Blake3Hasher } from '../../codec/hash.js';
import { type BatchCallbacks, type FileResult, fileResult, type GetItem } from '../../core/items.js';
import { IntegrityError, RemoteError } from '../../errors.js';
import { publish, tempNameFor } from '../../util/temp_file.js';

/** Runs a fallback command: `script` in sh with `input` after it on stdin; stdout to `onData`. */
export type StreamRunner = (
  script: string,
  input: Uint8Array,
  onData: (chunk: Uint8Array) => Promise<void> | void,
) => Promise<{ code: number | null; stderr: string }>;

/** The name a file has in the stream: relative to `/`, led by `./` so none starts with `-`. */
function memberName(remote: string): string {
  return `.${remote.startsWith('/') ? '' : '/'}${remote}`;
}

/** GNU tar and bsdtar both read a NUL-separated list with `--null -T -`; -h follows links. */
const TAR_CREATE = 'cd / || exit 1\nexec tar -c -h -f - --null -T -\n';

export async function downloadTar(
  items: readonly GetItem[],
  run: StreamRunner,
  /**
   * anySize: the sizes are not known (read-back for -V): take what comes. hashOnly: write
   * nothing, only hash each member (-V's read-back).
   */
  opts: { hash: boolean; anySize?: boolean; hashOnly?: boolean },
  cb: BatchCallbacks<GetItem>,
): Promise<void> {
  const wanted = new Map(items.map((it) => [memberName(it.remote), it]));
  const delivered = new Map<string, string>();
  const reported = new Set<GetItem>();
  const report = (r: FileResult<GetItem>) => {
    reported.add(r.item);
    cb.onFileDone?.(r);
  };
  const ex = tarExtract();
  // A stream that is not tar (or cut short) errors here; the entries' loop ends with it.
  let broken: Error | null = null;
  ex.on('error', (err: Error) => {
    broken = err;
  });
  let refused: string | null = null;
  // A stream that breaks (cut short, not tar at all) fails the files it did not deliver, each
  // said, as does one that ends without them.
  let damaged: string | null = null;
  const consuming = (async () => {
    for await (const entry of ex) {
      const h = entry.header;
      const item = wanted.get(h.name);
      wanted.delete(h.name);
      if (!item) {
        refused = h.name;
        entry.resume();
        ex.destroy();
        return;
      }
      const t0 = performance.now();
      if (h.type === 'link' && h.linkname && delivered.has(h.linkname)) {
        entry.resume();
        const earlier = delivered.get(h.linkname) ?? '';
        // Read-back: the same content as the member it links to, so the same hash.
        report(opts.hashOnly ? fileResult(item, t0, { hash: earlier }) : hardLinked(item, earlier, t0));
        continue;
      }
      if (h.type !== 'file' && h.type !== 'contiguous-file') {
        entry.resume();
        report(
          fileResult(item, t0, { error: new RemoteError(`${item.remote}: not a regular file (${h.type})`) }),
        );
        continue;
      }
      if (!opts.anySize && h.size !== item.size) {
        entry.resume();
        report(
          fileResult(item, t0, {
            error: new IntegrityError(`${item.remote}: listed with ${item.size} bytes, sent with ${h.size}`),
          }),
        );
        continue;
      }
      const r = opts.hashOnly
        ? await hashMember(item, entry as AsyncIterable<Uint8Array>, t0)
        : await receive(
            item,
            opts.anySize ? (h.size ?? 0) : item.size,
            entry as AsyncIterable<Uint8Array>,
            opts.hash,
            cb,
            t0,
          );
      // What a later hard link to this member needs: our copy of it, or (read-back) its hash.
      if (!r.error) delivered.set(h.name, opts.hashOnly ? (r.hash ?? '') : item.local);
      report(r);
    }
  })().catch((err: Error) => {
    // Caught at once (a rejection left waiting would end the process): the files this stream
    // did not deliver fail below with this reason.
    damaged = err.message;
  });
  let feeding: Promise<void> = Promise.resolve();
  const list = Buffer.from(items.map((it) => `${memberName(it.remote)}\0`).join(''));
  const result = await run(TAR_CREATE, list, async (chunk) => {
    if (refused !== null || broken !== null) return;
    await feeding;
    if (!ex.write(chunk)) feeding = new Promise((resolve) => ex.once('drain', () => resolve()));
  }).finally(() => ex.end(undefined));
  await consuming;
  if (damaged === null && broken !== null) damaged = (broken as Error).message;
  const why =
    refused !== null
      ? `the remote tar sent ${JSON.stringify(refused)}, which was not asked for: stream refused`
      : damaged !== null
        ? `the remote tar stream is damaged (${damaged})`
        : `not in the remote's tar stream${result.stderr ? `: ${result.stderr}` : result.code ? ` (tar exit ${result.code})` : ''}`;
  for (const it of items)
    if (!reported.has(it)) report(fileResult(it, -1, { error: new RemoteError(`${it.remote}: ${why}`) }));
}

async function receive(
  item: GetItem,
  size: number,
  entry: AsyncIterable<Uint8Array>,
  hash: boolean,
  cb: BatchCallbacks<GetItem>,
  t0: number,
): Promise<FileResult<GetItem>> {
  const tmp = tempNameFor(item.local);
  const hasher = hash ? new Blake3Hasher() : null;
  let fd = -1;
  let error: Error | null = null;
  let got = 0;
  try {
    fd = openSync(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o644,
    );
  } catch (err) {
    error = err as Error;
  }
  let cut: Error | null = null;
  try {
    // The entry is read to its end whatever happens: the next one starts after it.
    for await (const chunk of entry) {
      got += chunk.length;
      if (error) continue;
      try {
        // Synchronous: a chunk is at most a pipe's worth, and the next one waits for it anyway.
        for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off);
        hasher?.update(chunk);
        cb.onBytes?.(chunk.length, item);
      } catch (err) {
        error = err as Error;
      }
    }
  } catch (err) {
    // The stream itself broke (the remote died, Ctrl-C): this file is not whole.
    cut = err as Error;
    error ??= cut;
  }
  if (fd >= 0) closeSync(fd);
  if (!error && got !== size) error = new IntegrityError(`${item.remote}: received ${got} of ${size} bytes`);
  if (!error) {
    try {
      publish(tmp, item.local, item.overwrite ?? true);
      return fileResult(item, t0, { bytes: got, hash: hasher ? hasher.digest('hex') : null });
    } catch (err) {
      error = err as Error;
    }
  }
  if (fd >= 0) {
    try {
      unlinkSync(tmp);
    } catch {}
  }
  if (cut) throw cut;
  return fileResult(item, t0, { error });
}

/** -V's read-back: the member's BLAKE3, nothing written. */
async function hashMember(
  item: GetItem,
  entry: AsyncIterable<Uint8Array>,
  t0: number,
): Promise<FileResult<GetItem>> {
  const hasher = new Blake3Hasher();
  let got = 0;
  for await (const chunk of entry) {
    hasher.update(chunk);
    got += chunk.length;
  }
  return fileResult(item, t0, { bytes: got, hash: hasher.digest('hex') });
}

/** A hard link in the stream to a file it already delivered: that file's bytes, copied here. */
function hardLinked(item: GetItem, from: string, t0: number): FileResult<GetItem> {
  const tmp = tempNameFor(item.local);
  try {
    copyFileSync(from, tmp, constants.COPYFILE_EXCL);
    publish(tmp, item.local, item.overwrite ?? true);
    return fileResult(item, t0, { bytes: item.size, hash: null });
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {}
    return fileResult(item, t0, { error: err as Error });
  }
}
