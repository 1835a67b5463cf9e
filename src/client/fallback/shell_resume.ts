/**
 * -C on the plain-ssh fallback, for the big files that move alone (CAT_MIN_BYTES and up): a
 * download continues `.NAME.bcmr-part` after the bytes it already has, once the remote has
 * hashed that same prefix of its file and the hash matches ours (BLAKE3 with `b3sum` there,
 * else SHA-256 with `sha256sum`, `shasum` or `openssl`). One exec does both: the remote prints
 * its hash line, then `tail -c +N` sends the rest; if the prefix does not match, that stream is
 * dropped and a second one starts from byte 0 (a prefix is never trusted unverified). The part
 * file stays on failure for the next -C run, and is published only when whole.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, ftruncateSync, readSync, writeSync } from 'node:fs';
import { Blake3Hasher } from '../../codec/hash.js';
import type { BatchCallbacks, GetItem } from '../../core/items.js';
import { IntegrityError, RemoteError } from '../../errors.js';
import { sh, shRaw } from '../../util/shell.js';
import { openPartFile, partNameFor, publish } from '../../util/temp_file.js';
import { SHA256_FN } from '../shell/remote_shell.js';
import type { StreamRunner } from './tar_download.js';

/** Prints `ALGO HASH` of the first $n bytes of $f with what the remote has, then the rest of $f. */
function resumeScript(remote: string, have: number): string {
  return sh`${shRaw(SHA256_FN)}
f=${remote}; n=${have}
if [ "$n" -eq 0 ]; then echo "none -"
elif command -v b3sum >/dev/null 2>&1; then echo "blake3 $(head -c "$n" -- "$f" | b3sum --no-names)"
else h=$(head -c "$n" -- "$f" | sha256); if [ "$h" = none ]; then echo "none -"; else echo "sha256 $h"; fi; fi
exec tail -c +$((n + 1)) -- "$f"
`.text;
}

const PREFIX_DIFFERS = new Error('the partial file differs from the remote file');

export interface Resumed {
  bytes: number;
  hash: string | null;
  resumedFrom: number;
}

export async function getResumableShell(
  item: GetItem,
  run: StreamRunner,
  cb: BatchCallbacks<GetItem>,
): Promise<Resumed> {
  const part = partNameFor(item.local);
  // Only a part file of ours is continued; anything else there is replaced (openPartFile).
  const { fd } = openPartFile(part);
  // Closed exactly once: a second close could hit a descriptor another download (or the
  // thread pool, for an async open) was just given the same number.
  let fdOpen = true;
  try {
    const have = Math.min(fstatSync(fd).size, item.size);
    const first = await attempt(item, run, cb, fd, have);
    const done = first ?? (await attempt(item, run, cb, fd, 0));
    if (!done) throw new IntegrityError(`${item.remote}: the remote could not confirm even an empty prefix`);
    fdOpen = false;
    closeSync(fd);
    publish(part, item.local, item.overwrite ?? true);
    return done;
  } finally {
    if (fdOpen) closeSync(fd);
  }
}

/** One exec from `have`; null when the remote's hash of the prefix is not ours (start over). */
async function attempt(
  item: GetItem,
  run: StreamRunner,
  cb: BatchCallbacks<GetItem>,
  fd: number,
  have: number,
): Promise<Resumed | null> {
  let line: Buffer | null = Buffer.alloc(0);
  let keep = 0;
  let got = 0;
  let whole: Blake3Hasher | null = null;
  const stream = run(resumeScript(item.remote, have), new Uint8Array(0), (chunk) => {
    let data = Buffer.from(chunk);
    if (line !== null) {
      const nl = data.indexOf(10);
      if (nl < 0) {
        line = Buffer.concat([line, data]);
        if (line.length > 512) throw new RemoteError(`${item.remote}: no hash line from the remote`);
        return;
      }
      const [algo, digest] = Buffer.concat([line, data.subarray(0, nl)])
        .toString('utf8')
        .trim()
        .split(' ');
      line = null;
      data = data.subarray(nl + 1);
      whole = new Blake3Hasher();
      if (have > 0 && algo !== 'none' && prefixHash(fd, have, algo, whole) === digest) keep = have;
      // Not our prefix: stop this stream (throwing ends the exec) and start again from 0.
      else if (have > 0) throw PREFIX_DIFFERS;
      ftruncateSync(fd, keep);
      cb.onBytes?.(keep, item);
    }
    if (keep + got + data.length > item.size)
      throw new IntegrityError(`${item.remote}: more than the ${item.size} bytes announced`);
    for (let off = 0; off < data.length; )
      off += writeSync(fd, data, off, data.length - off, keep + got + off);
    whole?.update(data);
    got += data.length;
    cb.onBytes?.(data.length, item);
  });
  let result: { code: number | null; stderr: string };
  try {
    result = await stream;
  } catch (err) {
    if (err === PREFIX_DIFFERS) return null;
    throw err;
  }
  const { code, stderr } = result;
  if (code !== 0 || keep + got !== item.size)
    throw new RemoteError(
      `${item.remote}: received ${keep + got} of ${item.size} bytes${stderr ? `: ${stderr}` : ''} (the part file is kept for -C)`,
    );
  return { bytes: got, hash: (whole as Blake3Hasher | null)?.digest('hex') ?? null, resumedFrom: keep };
}

/** Our part's first `have` bytes hashed as the remote did; BLAKE3 of them goes into `whole`. */
function prefixHash(fd: number, have: number, algo: string, whole: Blake3Hasher): string | null {
  const sha = algo === 'sha256' ? createHash('sha256') : null;
  const b3 = algo === 'blake3' ? new Blake3Hasher() : null;
  if (!sha && !b3) return null;
  const buf = Buffer.allocUnsafe(1 << 20);
  for (let off = 0; off < have; ) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, have - off), off);
    if (n <= 0) return null;
    const view = buf.subarray(0, n);
    sha?.update(view);
    b3?.update(view);
    whole.update(view);
    off += n;
  }
  return sha ? sha.digest('hex') : (b3 as Blake3Hasher).digest('hex');
}
