/**
 * Content-addressed store of 4 MiB dedup blocks (PROTOCOL.md section 9).
 *
 * Blocks are held by reference: `<dir>/h[0..2]/h[2..4]/h[4..].ref` names a file, offset and
 * length where the block's bytes were written by an earlier upload (written to a temp name and
 * renamed, so a reader never sees a torn entry). A first upload then costs a few small writes
 * instead of a second copy of every byte (which doubled the disk writes of every fresh upload
 * of 16 MiB or more). Block files `h[4..].blk`, the layout the Rust server writes into the same
 * default directory, are read too. Using an entry touches its mtime (LRU order). The store
 * layout is this server's own business; the wire is v2.
 *
 * Private to its owner: the directories are 0700 and the entries 0600 (a `.ref` names where
 * uploaded files lie), and a store directory that is a symlink or belongs to another user is
 * not used at all (`ready()` fails; the Put then goes on without dedup).
 *
 * Stricter than v2 (rule 17.3): every block read is re-hashed, whether from a block file or
 * through a reference; a corrupt block or a stale reference (the file changed) is deleted and
 * reported as absent, and the Put asks the client to resend without dedup.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import {
  chmod,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  realpath,
  rename,
  stat,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { blake3Hex } from '../codec/hash.js';
import { isWithin } from './path_guard.js';

const DEFAULT_CAS_CAP_MB = 1024;

export function defaultCasDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BCMR_CAS_DIR) return env.BCMR_CAS_DIR;
  const data = env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(data, 'bcmr', 'cas');
}

/** Cap in bytes from `BCMR_CAS_CAP_MB` (0 = unbounded, reported as Infinity). */
export function casCapBytes(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.BCMR_CAS_CAP_MB;
  const mb = raw === undefined || raw === '' ? DEFAULT_CAS_CAP_MB : Number(raw);
  if (!Number.isFinite(mb) || mb < 0) return DEFAULT_CAS_CAP_MB * 1024 * 1024;
  return mb === 0 ? Number.POSITIVE_INFINITY : mb * 1024 * 1024;
}

/** A block of an uploaded file: its hash and where it lies in the file. */
export interface StoredBlock {
  hex: string;
  offset: number;
  length: number;
}

export class Cas {
  private checked: Promise<void> | null = null;
  /** Where this store's entries live: the base, or for a session jailed with --root its own part. */
  readonly dir: string;

  /**
   * `root`: the session's --root. A jailed session gets a store of its own (under
   * `roots/<hash of the root>`) and follows a reference only to a file inside its root (or to
   * its own kept partial files): it can never pull blocks of files outside its root by hash.
   */
  constructor(
    private readonly base: string,
    private readonly root = '/',
  ) {
    this.dir =
      root === '/'
        ? base
        : path.join(base, 'roots', createHash('sha256').update(root).digest('hex').slice(0, 32));
  }

  /** A referenced file may be read: inside the root (its real path), or one of our kept partials. */
  private async reachable(file: string): Promise<boolean> {
    if (this.root === '/' || this.isPartial(file)) return true;
    const real = await realpath(file).catch(() => null);
    return real !== null && isWithin(this.root, real);
  }

  /** Creates the store private, or refuses one that is not ours (see the header). */
  ready(): Promise<void> {
    this.checked ??= (async () => {
      // The base and, for a jailed session, its part of the store: each a plain directory of
      // ours, checked before anything is made inside it.
      const dirs = this.dir === this.base ? [this.dir] : [this.base, path.dirname(this.dir), this.dir];
      for (const [i, d] of dirs.entries()) {
        await mkdir(d, { recursive: i === 0, mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
        const st = await lstat(d);
        if (st.isSymbolicLink() || !st.isDirectory()) {
          throw new Error(`dedup store ${d} is not a plain directory (a symlink?): not used`);
        }
        const uid = process.getuid?.();
        if (uid !== undefined && st.uid !== uid) {
          throw new Error(`dedup store ${d} belongs to uid ${st.uid}, not to us: not used`);
        }
        if ((st.mode & 0o077) !== 0) await chmod(d, 0o700);
      }
    })();
    return this.checked;
  }

  blockPath(hex: string): string {
    return path.join(this.dir, hex.slice(0, 2), hex.slice(2, 4), `${hex.slice(4)}.blk`);
  }

  refPath(hex: string): string {
    return path.join(this.dir, hex.slice(0, 2), hex.slice(2, 4), `${hex.slice(4)}.ref`);
  }

  /**
   * Whether the store holds the block. A hit counts as a use (LRU): the block was just promised
   * to a Put, and another session's eviction should take older blocks first.
   */
  async has(hex: string): Promise<boolean> {
    const block = this.blockPath(hex);
    if (await isFile(block)) {
      await touch(block);
      return true;
    }
    // A reference counts only while the file it names still holds that range: a file removed
    // or cut short since (e.g. deleted, then uploaded again) would otherwise be promised, fail
    // the Put when read, and cost a new connection and a resend of everything.
    const p = this.refPath(hex);
    const ref = await readRefFile(p);
    if (!ref || !(await this.reachable(ref.file))) return false;
    const st = await stat(ref.file).catch(() => null);
    if (!st?.isFile() || st.size < ref.offset + ref.length) {
      await unlink(p).catch(() => {});
      return false;
    }
    await touch(p);
    if (this.isPartial(ref.file)) await touch(ref.file);
    return true;
  }

  /** The block's bytes if present and intact; a corrupt block is removed and reported as null. */
  async read(hex: string): Promise<Buffer | null> {
    const p = this.blockPath(hex);
    let data: Buffer | null;
    try {
      data = await readFile(p);
    } catch {
      return this.readRef(hex);
    }
    if (blake3Hex(data) !== hex) {
      await unlink(p).catch(() => {});
      return this.readRef(hex);
    }
    await touch(p);
    return data;
  }

  private async readRef(hex: string): Promise<Buffer | null> {
    const p = this.refPath(hex);
    const ref = await readRefFile(p);
    if (!ref || !(await this.reachable(ref.file))) return null;
    let data: Buffer | null = null;
    try {
      const fh = await open(ref.file, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        // Checked again on what was opened: a directory swapped for a link meanwhile.
        if (this.root !== '/' && !this.isPartial(ref.file)) {
          const real = await realpath(`/proc/self/fd/${fh.fd}`).catch(() => ref.file);
          if (!isWithin(this.root, real)) throw new Error('outside the root');
        }
        const buf = Buffer.allocUnsafe(ref.length);
        const { bytesRead } = await fh.read(buf, 0, ref.length, ref.offset);
        data = bytesRead === ref.length ? buf : null;
      } finally {
        await fh.close();
      }
    } catch {
      data = null;
    }
    if (data === null || blake3Hex(data) !== hex) {
      // The file moved or changed since: the reference is stale.
      await unlink(p).catch(() => {});
      return null;
    }
    await touch(p);
    if (this.isPartial(ref.file)) await touch(ref.file);
    return data;
  }

  /** Where the files of failed uploads are kept for their blocks (see `keepPartial`). */
  get partialDir(): string {
    return path.join(this.dir, 'partial');
  }

  private isPartial(file: string): boolean {
    return path.dirname(file) === this.partialDir;
  }

  /**
   * Keeps the blocks a failed upload received and verified (connection lost, Ctrl-C, killed
   * client), so that a plain rerun sends only what the server lacks (the Rust server keeps its
   * received blocks too). The temp file moves into `partial/` and the store refers to its blocks
   * there: no byte is copied. Across filesystems it cannot move, and the blocks are copied into
   * block files instead, each read back and re-hashed first (bytes still in a write batch when
   * the upload failed never reached the file). The file is gone from the destination directory
   * either way. Kept files count against the cap like blocks and are evicted the same way.
   */
  async keepPartial(file: string, blocks: readonly StoredBlock[]): Promise<void> {
    await this.ready();
    await mkdir(this.partialDir, { recursive: true, mode: 0o700 });
    const kept = path.join(this.partialDir, randomBytes(8).toString('hex'));
    try {
      await rename(file, kept);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      await this.copyBlocks(file, blocks);
      return;
    }
    await chmod(kept, 0o600).catch(() => {});
    // Received pieces are written in order, so the file holds exactly the prefix that reached
    // the disk: a block beyond its end was still in a write batch when the upload failed.
    const size = (await stat(kept)).size;
    for (const b of blocks) {
      if (b.offset + b.length <= size) await this.refer(b.hex, kept, b.offset, b.length).catch(() => {});
    }
  }

  private async copyBlocks(file: string, blocks: readonly StoredBlock[]): Promise<void> {
    const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      for (const b of blocks) {
        const buf = Buffer.allocUnsafe(b.length);
        const { bytesRead } = await fh.read(buf, 0, b.length, b.offset);
        if (bytesRead !== b.length || blake3Hex(buf) !== b.hex) continue;
        await this.writeAtomic(this.blockPath(b.hex), buf).catch(() => {});
      }
    } finally {
      await fh.close();
    }
  }

  /** Records that `file` holds the block at `[offset, offset + length)` (see the header). */
  async refer(hex: string, file: string, offset: number, length: number): Promise<void> {
    if (await isFile(this.blockPath(hex))) {
      await touch(this.blockPath(hex));
      return;
    }
    // An older reference is replaced: the newest copy is the likeliest to be intact.
    await this.writeAtomic(this.refPath(hex), `${offset}\t${length}\t${file}`);
  }

  private async writeAtomic(p: string, data: string | Uint8Array): Promise<void> {
    await mkdir(path.dirname(p), { recursive: true, mode: 0o700 });
    const tmp = `${p}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await writeFile(tmp, data, { mode: 0o600, flag: 'wx' });
      await rename(tmp, p);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }

  /**
   * Deletes least-recently-touched blocks until the store holds at most `capBytes`. A reference
   * counts as the length of its block: the cap bounds how much the store can deduplicate.
   */
  async evict(capBytes: number): Promise<void> {
    if (!Number.isFinite(capBytes)) return;
    const blocks: { p: string; size: number; mtime: number }[] = [];
    let total = 0;
    for (const a of await readdirOrEmpty(this.dir)) {
      for (const b of await readdirOrEmpty(path.join(this.dir, a))) {
        const sub = path.join(this.dir, a, b);
        for (const f of await readdirOrEmpty(sub)) {
          const isRef = f.endsWith('.ref');
          if (!f.endsWith('.blk') && !isRef) continue;
          const p = path.join(sub, f);
          try {
            const st = await stat(p);
            // A reference into a kept partial file costs nothing of its own: the file counts.
            const ref = isRef ? await readRefFile(p) : null;
            const size = isRef ? (ref && !this.isPartial(ref.file) ? ref.length : 0) : st.size;
            blocks.push({ p, size, mtime: st.mtimeMs });
            total += size;
          } catch {
            // Evicted by a concurrent session: nothing to count.
          }
        }
      }
    }
    for (const f of await readdirOrEmpty(this.partialDir)) {
      const p = path.join(this.partialDir, f);
      const st = await stat(p).catch(() => null);
      if (!st) continue;
      blocks.push({ p, size: st.size, mtime: st.mtimeMs });
      total += st.size;
    }
    if (total <= capBytes) return;
    blocks.sort((x, y) => x.mtime - y.mtime);
    for (const b of blocks) {
      if (total <= capBytes) break;
      await unlink(b.p).catch(() => {});
      total -= b.size;
    }
  }
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** `offset TAB length TAB absolute file path`, or null if missing or unreadable. */
async function readRefFile(p: string): Promise<{ offset: number; length: number; file: string } | null> {
  try {
    const [offset, length, ...rest] = (await readFile(p, 'utf8')).split('\t');
    const file = rest.join('\t');
    const o = Number(offset);
    const n = Number(length);
    if (!Number.isSafeInteger(o) || !Number.isSafeInteger(n) || n <= 0 || !path.isAbsolute(file)) return null;
    return { offset: o, length: n, file };
  } catch {
    return null;
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

async function touch(p: string): Promise<void> {
  const now = new Date();
  await utimes(p, now, now).catch(() => {});
}
