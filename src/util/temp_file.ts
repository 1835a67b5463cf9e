/** Temp names beside a destination: data is written there and renamed in when verified. */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  linkSync,
  lstatSync,
  openSync,
  renameSync,
  type Stats,
  unlinkSync,
} from 'node:fs';
import path from 'node:path';
import { ExistsError, RemoteError } from '../errors.js';

const TEMP_MARKER = '.bcmr-tmp-';
/** Suffix of a resumable partial file (`.NAME.bcmr-part`), kept across runs with -C. */
const PART_SUFFIX = '.bcmr-part';

/** Random per process, then a counter: unique without a random draw per file. */
const prefix = randomBytes(3).toString('hex');
let counter = 0;

/**
 * `.NAME.bcmr-tmp-XXXXXXXXXXXX` beside `dest`: where a file is received before it is verified
 * and renamed in (NAME shortened with a hash tag where the whole would pass 255 bytes).
 */
export function tempNameFor(dest: string): string {
  counter = (counter + 1) % 0x1000000;
  return path.join(
    path.dirname(dest),
    `.${fitName(path.basename(dest), TEMP_MARKER.length + 13)}${TEMP_MARKER}${prefix}${counter.toString(16).padStart(6, '0')}`,
  );
}

/** Where a resumable transfer collects its bytes (PROTOCOL.md 17.2), found again by a rerun. */
export function partNameFor(dest: string): string {
  return path.join(
    path.dirname(dest),
    `.${fitName(path.basename(dest), PART_SUFFIX.length + 1)}${PART_SUFFIX}`,
  );
}

/** Longest file name most filesystems take, in bytes. */
const NAME_MAX = 255;

/**
 * `name`, or when it and `extra` more bytes would not fit a file name, its longest UTF-8 prefix
 * that does with `~` and 8 hex digits of its SHA-256 (deterministic: a rerun finds the same
 * part file; distinct: two long names sharing a prefix do not collide).
 */
function fitName(name: string, extra: number): string {
  const bytes = Buffer.from(name);
  if (bytes.length + extra <= NAME_MAX) return name;
  const tag = `~${createHash('sha256').update(bytes).digest('hex').slice(0, 8)}`;
  let cut = NAME_MAX - extra - tag.length;
  // Back up to a character boundary: never split a UTF-8 sequence.
  while (cut > 0 && (bytes[cut] & 0xc0) === 0x80) cut--;
  return `${bytes.subarray(0, cut).toString('utf8')}${tag}`;
}

/**
 * Gives a verified temp file its final name atomically. Without `overwrite`, link() refuses an
 * existing name atomically (then the temp name is removed); `existsError` says how to report
 * that. Filesystems without hard links fall back to check-then-rename.
 */
export function publishTemp(
  tmp: string,
  dest: string,
  overwrite: boolean,
  existsError: (dest: string) => Error,
): void {
  if (overwrite) {
    renameSync(tmp, dest);
    return;
  }
  try {
    linkSync(tmp, dest);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw existsError(dest);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    if (lstatSync(dest, { throwIfNoEntry: false }) !== undefined) throw existsError(dest);
    renameSync(tmp, dest);
    return;
  }
  unlinkSync(tmp);
}

/** Moves a verified local temp file to its final name; an existing one without -f: ExistsError. */
export function publish(tmp: string, dest: string, overwrite: boolean): void {
  publishTemp(tmp, dest, overwrite, (d) => new ExistsError(`${d}: already exists (use -f to overwrite)`));
}

/**
 * A part file may be continued only when it is a regular file of ours that no one else can
 * write: one another user planted (or can still write) would be published as our copy, owned
 * by them or open to their changes after the hash check.
 */
export function adoptable(st: Stats): boolean {
  const uid = process.geteuid?.();
  return st.isFile() && (uid === undefined || st.uid === uid) && (st.mode & 0o022) === 0;
}

/** What the server says when it had to replace a part file that was not adoptable. */
export const PART_REPLACED = "was replaced (not this user's, or writable by others)";

/** The server replaced a part file that was not ours: the bytes before the range are gone. */
export function isReplacedPart(err: unknown): boolean {
  return err instanceof RemoteError && err.message.includes(PART_REPLACED);
}

/**
 * Opens a local part file for reading and writing: ours as found (see `adoptable`), else a new
 * one (O_EXCL) in place of what was there, which is removed, never written through. `fresh`
 * says the file starts empty.
 */
export function openPartFile(part: string): { fd: number; fresh: boolean } {
  const { O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      return { fd: openSync(part, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644), fresh: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let fd: number | null = null;
    try {
      fd = openSync(part, O_RDWR | O_NOFOLLOW);
      if (adoptable(fstatSync(fd))) return { fd, fresh: false };
    } catch {
      // A link, a directory, or not ours to open: replaced below.
    }
    if (fd !== null) closeSync(fd);
    unlinkSync(part);
  }
  throw new ExistsError(`${part}: keeps reappearing; not used as a part file`);
}
