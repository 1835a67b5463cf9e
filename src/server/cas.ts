/**
 * Content-addressed store of 4 MiB dedup blocks (PROTOCOL.md section 9).
 * Layout: `<dir>/h[0..2]/h[2..4]/h[4..].blk`, written to a temp name and renamed, so a reader
 * never sees a torn block. Reading or re-writing a block touches its mtime (LRU order).
 * Stricter than v2 (rule 17.3): every block read is re-hashed; a corrupt one is deleted.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { blake3Hex } from '../codec/hash.js';

export const DEFAULT_CAS_CAP_MB = 1024;

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

export class Cas {
  constructor(readonly dir: string) {}

  blockPath(hex: string): string {
    return path.join(this.dir, hex.slice(0, 2), hex.slice(2, 4), `${hex.slice(4)}.blk`);
  }

  async has(hex: string): Promise<boolean> {
    try {
      return (await stat(this.blockPath(hex))).isFile();
    } catch {
      return false;
    }
  }

  /** The block's bytes if present and intact; a corrupt block is removed and reported as null. */
  async read(hex: string): Promise<Buffer | null> {
    const p = this.blockPath(hex);
    let data: Buffer;
    try {
      data = await readFile(p);
    } catch {
      return null;
    }
    if (blake3Hex(data) !== hex) {
      await unlink(p).catch(() => {});
      return null;
    }
    await touch(p);
    return data;
  }

  async write(hex: string, data: Uint8Array): Promise<void> {
    const p = this.blockPath(hex);
    if (await this.has(hex)) {
      await touch(p);
      return;
    }
    await mkdir(path.dirname(p), { recursive: true });
    const tmp = `${p}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await writeFile(tmp, data);
      await rename(tmp, p);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }

  /** Deletes least-recently-touched blocks until the store holds at most `capBytes`. */
  async evict(capBytes: number): Promise<void> {
    if (!Number.isFinite(capBytes)) return;
    const blocks: { p: string; size: number; mtime: number }[] = [];
    let total = 0;
    for (const a of await readdirOrEmpty(this.dir)) {
      for (const b of await readdirOrEmpty(path.join(this.dir, a))) {
        const sub = path.join(this.dir, a, b);
        for (const f of await readdirOrEmpty(sub)) {
          if (!f.endsWith('.blk')) continue;
          const p = path.join(sub, f);
          try {
            const st = await stat(p);
            blocks.push({ p, size: st.size, mtime: st.mtimeMs });
            total += st.size;
          } catch {
            // Evicted by a concurrent session: nothing to count.
          }
        }
      }
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
