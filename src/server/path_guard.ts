/**
 * Confines every path of a session to the server root (PROTOCOL.md section 14, rule 17.5).
 *
 * Relative paths start at the root; absolute paths are taken as is; NUL bytes and `..`
 * components are refused; the canonical form (symlinks of the longest existing ancestor
 * resolved) must stay inside the root.
 *
 * Checking a path and then opening it by name is a race: a directory inside the root swapped
 * for a symlink to outside between the two makes the open land outside. So the guard never
 * hands out a checked *name*. It opens first and checks what was opened:
 * - files are opened with O_NOFOLLOW (last component) and O_NONBLOCK (a FIFO or a device never
 *   blocks the event loop), then the descriptor's own path (`/proc/self/fd/N` on Linux) must be
 *   inside the root and it must be a regular file; every read, hash, truncate and write then
 *   goes through that descriptor;
 * - a write target's parent directory is opened and checked the same way, and the target is
 *   created, published (rename, link) and removed through `/proc/self/fd/DIR/NAME`, which names
 *   an entry of that very directory whatever is renamed meanwhile (openat without openat).
 * Where `/proc/self/fd` does not exist (macOS, BSD) the check compares the descriptor's device
 * and inode with those of the canonical path instead, and names go through the directory's
 * real path, checked again after each open (a narrower window, not none).
 */
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  fsync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  realpathSync,
  type Stats,
  statSync,
  unlinkSync,
} from 'node:fs';
import { mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { PathError } from '../errors.js';
import { FdFile } from '../util/fd_file.js';
import { adoptable } from '../util/temp_file.js';
import { OpError } from './context.js';

const PROC_FD = existsSync('/proc/self/fd') ? '/proc/self/fd' : null;

/**
 * O_PATH (Linux): a descriptor that names a file without opening it for I/O, so Stat of an
 * unreadable file, a FIFO or a device has no side effect and needs no permission. Same value on
 * every Linux architecture Node supports.
 */
const O_PATH = PROC_FD && process.platform === 'linux' ? 0o10000000 : 0;

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;

/** A directory opened and checked to lie inside the root; entries are reached through it. */
export class JailDir {
  private closed = false;
  /** Owned by the guard's cache of write directories: `close()` leaves it open for the next file. */
  cached = false;
  constructor(
    readonly fd: number,
    /** Its real path when it was opened (for messages and for the dedup store's references). */
    readonly real: string,
  ) {}

  /** A path naming `name` inside this very directory (see the module comment). */
  at(name: string): string {
    return PROC_FD ? `${PROC_FD}/${this.fd}/${name}` : path.join(this.real, name);
  }

  /** The real path `name` has inside this directory. */
  realOf(name: string): string {
    return path.join(this.real, name);
  }

  /** Makes the directory's entries (a rename just done) durable. */
  sync(): Promise<void> {
    return new Promise((resolve, reject) => fsync(this.fd, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    if (this.cached || this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  /** Closes it even when cached (the guard evicting it or ending). */
  release(): void {
    this.cached = false;
    this.close();
  }
}

/** Write directories kept open per session: a tree's files come back to the same few. */
const MAX_CACHED_DIRS = 64;

/** Where a write goes: the checked parent directory and the entry's name in it. */
export interface WriteTarget {
  dir: JailDir;
  name: string;
}

export class PathGuard {
  /**
   * Parent directories of recent writes, opened and checked, by their real path. Each file
   * of a tree written into one of them then costs one readlink (is the directory still where it
   * was, inside the root?) and one lstat, instead of resolving its whole path twice and
   * opening, checking and closing the directory again: ~60 us of a server's ~230 us of
   * user CPU per small file. Only where /proc/self/fd names what a descriptor is.
   */
  private readonly dirs = new Map<string, JailDir>();

  private constructor(readonly root: string) {}

  /** Closes the cached directories (the session is over). */
  close(): void {
    for (const d of this.dirs.values()) d.release();
    this.dirs.clear();
  }

  /** Creates the root if missing, then canonicalises it. */
  static async create(root: string): Promise<PathGuard> {
    await mkdir(root, { recursive: true });
    return new PathGuard(await realpath(root));
  }

  contains(canonical: string): boolean {
    return isWithin(this.root, canonical);
  }

  /**
   * The canonical absolute path of `p` (symlinks of its existing part resolved, the final
   * component's included), refused when it leaves the root. A first, clear answer for the
   * common case; the open that follows is what makes it safe.
   */
  canonical(p: string): string {
    if (p.includes('\0')) throw new PathError('escape: path contains a NUL byte');
    if (p.split('/').includes('..')) throw new PathError(`escape: path has a '..' component: ${clip(p)}`);
    const canonical = canonicalise(path.resolve(this.root, p === '' ? '.' : p));
    if (!this.contains(canonical)) throw new PathError(`escape: path resolves outside the root: ${clip(p)}`);
    return canonical;
  }

  /** Opens an existing regular file for reading (ENOENT when it does not exist). */
  openRead(p: string): FdFile {
    const c = this.canonical(p);
    const fd = openChecked(c, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, p);
    try {
      const st = fstatSync(fd);
      this.verify(fd, c, st, p);
      if (!st.isFile()) throw new OpError(`io: not a regular file: ${clip(p)}`);
      return FdFile.fromFd(fd, c);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Metadata of what `p` names (following symlinks inside the root), without opening it for I/O. */
  stat(p: string): Stats {
    const c = this.canonical(p);
    if (!O_PATH) {
      // No O_PATH: a plain stat, then the same identity check on what it saw.
      const st = statSync(c);
      if (!this.contains(realpathSync.native(c))) throw escaped(p);
      return st;
    }
    const fd = openChecked(c, O_PATH | O_NOFOLLOW, p);
    try {
      const st = fstatSync(fd);
      this.verify(fd, c, st, p);
      return st;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Opens the directory `p` names (checked inside the root). With `create`, missing
   * directories are made one at a time, each inside the previous one checked.
   */
  openDir(p: string, create: boolean): JailDir {
    return this.openDirAt(this.canonical(p), create, p);
  }

  /**
   * The parent directory and name a write to `p` goes to. A path that is a symlink to
   * somewhere inside the root writes there (as cp follows a destination link); one leading out
   * was refused by `canonical`; the root itself is never a write target.
   */
  writeTarget(p: string, createParents: boolean): WriteTarget {
    const fast = this.cachedTarget(p);
    if (fast) return fast;
    const c = this.canonical(p);
    if (c === this.root || c === '/')
      throw new OpError('denied: the root directory itself is not a file to write');
    const target = { dir: this.openDirAt(path.dirname(c), createParents, p), name: path.basename(c) };
    // Kept for the next file only when no link was involved: then the requested path and the
    // real one are the same string, and the cache's key means exactly this directory.
    if (PROC_FD && target.dir.real === path.dirname(c) && c === path.resolve(this.root, p)) {
      this.remember(target.dir);
    }
    return target;
  }

  /**
   * The write target of `p` from a cached directory, or null (not cached, moved, or the name is
   * a link, which the full path resolves: a destination link is followed, as cp does).
   * `..` and NUL never get here: the full path refuses them with a clear error.
   */
  private cachedTarget(p: string): WriteTarget | null {
    if (this.dirs.size === 0 || p.includes('\0') || p.split('/').includes('..')) return null;
    const abs = path.resolve(this.root, p === '' ? '.' : p);
    if (abs === this.root || abs === '/') return null;
    const key = path.dirname(abs);
    const dir = this.dirs.get(key);
    if (!dir) return null;
    let now = '';
    try {
      now = readlinkSync(`${PROC_FD}/${dir.fd}`);
    } catch {
      // Unreadable: treated as moved.
    }
    // Renamed, moved (even outside the root) or removed ("... (deleted)") since it was checked.
    if (now !== dir.real) {
      this.dirs.delete(key);
      dir.release();
      return null;
    }
    const name = path.basename(abs);
    if (lstatSync(dir.at(name), { throwIfNoEntry: false })?.isSymbolicLink()) return null;
    return { dir, name };
  }

  private remember(dir: JailDir): void {
    const old = this.dirs.get(dir.real);
    if (old) {
      this.dirs.delete(dir.real);
      old.release();
    }
    if (this.dirs.size >= MAX_CACHED_DIRS) {
      // Handlers run one at a time, so the oldest is not in use.
      const [k, d] = this.dirs.entries().next().value as [string, JailDir];
      this.dirs.delete(k);
      d.release();
    }
    dir.cached = true;
    this.dirs.set(dir.real, dir);
  }

  private openDirAt(abs: string, create: boolean, p: string): JailDir {
    let fd: number;
    try {
      fd = openSync(abs, O_RDONLY | O_DIRECTORY);
    } catch (err) {
      if (!create || (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return this.makeDirs(abs, p);
    }
    try {
      return new JailDir(fd, this.verify(fd, abs, fstatSync(fd), p));
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** mkdir -p of `abs` under the root, each step through the checked directory before it. */
  private makeDirs(abs: string, p: string): JailDir {
    const rel = path.relative(this.root, abs);
    let dir = this.openDirAt(this.root, false, p);
    try {
      for (const name of rel === '' ? [] : rel.split('/')) {
        try {
          mkdirSync(dir.at(name), 0o777);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const fd = openSync(dir.at(name), O_RDONLY | O_DIRECTORY);
        let next: JailDir;
        try {
          next = new JailDir(fd, this.verify(fd, dir.realOf(name), fstatSync(fd), p));
        } catch (err) {
          closeSync(fd);
          throw err;
        }
        dir.close();
        dir = next;
      }
      return dir;
    } catch (err) {
      dir.close();
      throw err;
    }
  }

  /**
   * Checks that an open descriptor lies inside the root; returns its real path. `expected`
   * is the path it was opened by (used where /proc/self/fd is missing).
   */
  verify(fd: number, expected: string, st: Stats, p: string): string {
    let real: string;
    if (PROC_FD) {
      real = readlinkSync(`${PROC_FD}/${fd}`);
    } else {
      real = realpathSync.native(expected);
      const now = statSync(real);
      if (now.dev !== st.dev || now.ino !== st.ino) throw escaped(p);
    }
    if (!this.contains(real)) throw escaped(p);
    return real;
  }
}

/** Opens `abs`; a symlink met at the last component (O_NOFOLLOW) was swapped in: refused. */
function openChecked(abs: string, flags: number, p: string): number {
  try {
    return openSync(abs, flags);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw escaped(p);
    throw err;
  }
}

/** Opens (creating when asked) a regular file for writing inside a checked directory. */
export function openForWrite(guard: PathGuard, dir: JailDir, name: string, flags: number, p: string): FdFile {
  const fd = openChecked(dir.at(name), O_WRONLY | O_NOFOLLOW | O_NONBLOCK | flags, p);
  try {
    const st = fstatSync(fd);
    if (!PROC_FD) guard.verify(fd, dir.realOf(name), st, p);
    if (!st.isFile()) throw new OpError(`io: not a regular file: ${clip(p)}`);
    return FdFile.fromFd(fd, dir.realOf(name));
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * Opens a file written in place (a part file: Truncate, PutChunked, Put at an offset) inside a
 * checked directory: one of the session's user that no one else can write is continued as
 * found; anything else there (another user's, group or world writable, not a regular file) is
 * removed and a new file created with O_EXCL, never written through. `replaced`: that happened.
 * Where the directory will not let us remove it (sticky, another user's): refused.
 */
export function openOwnForWrite(
  guard: PathGuard,
  dir: JailDir,
  name: string,
  p: string,
): { fh: FdFile; replaced: boolean } {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      return { fh: openForWrite(guard, dir, name, CREATE_NEW, p), replaced: attempt > 0 };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // A link there is refused as an escape (as by O_NOFOLLOW), anything but a file as such:
    // only a regular file of another user is replaced, never a FIFO, device or directory.
    const st = lstatSync(dir.at(name), { throwIfNoEntry: false });
    if (st?.isSymbolicLink()) throw escaped(p);
    if (st && !st.isFile()) throw new OpError(`io: not a regular file: ${clip(p)}`);
    let fh: FdFile | null = null;
    try {
      fh = openForWrite(guard, dir, name, 0, p);
      if (adoptable(fh.stat())) return { fh, replaced: false };
    } catch (err) {
      if (err instanceof PathError) throw err;
      // Not ours to open, or not a regular file: replaced below.
    }
    fh?.close();
    try {
      unlinkSync(dir.at(name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new OpError(`io: ${clip(p)} is not this user's and cannot be replaced`);
    }
  }
  throw new OpError(`io: ${clip(p)} keeps reappearing`);
}

export const CREATE_NEW = O_CREAT | O_EXCL;

/** Whether the canonical path `real` is `root` or below it. */
export function isWithin(root: string, real: string): boolean {
  return root === '/' || real === root || real.startsWith(`${root}/`);
}

function escaped(p: string): PathError {
  return new PathError(`escape: path resolves outside the root: ${clip(p)}`);
}

/** Paths echoed in replies are cut: an Error frame must stay far below the frame cap (rule 17.8). */
export function clip(p: string, max = 512): string {
  return p.length <= max ? p : `${p.slice(0, max)}... (${p.length} bytes)`;
}

/**
 * realpath of the longest existing ancestor, joined with the components that do not exist yet.
 * Synchronous on purpose: realpath(3) of cached dentries takes microseconds, far less than a
 * round trip through the libuv pool, and it runs once or twice per file.
 */
function canonicalise(abs: string): string {
  const rest: string[] = [];
  let cur = abs;
  for (;;) {
    try {
      const real = realpathSync.native(cur);
      return rest.length === 0 ? real : path.join(real, ...rest.reverse());
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      const parent = path.dirname(cur);
      if (parent === cur) return abs;
      rest.push(path.basename(cur));
      cur = parent;
    }
  }
}
