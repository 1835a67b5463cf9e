/**
 * A per-user directory that only this user can write, or nothing. Node's compile cache in the
 * shared temp dir would run code another user planted there (a cache entry whose source hash
 * matches ours); so caches live under `$XDG_CACHE_HOME/bcmr` (or `~/.cache/bcmr`), created
 * 0700, and are used only when every directory from the cache base down is ours (or root's,
 * for the base) and writable by nobody else, and none is a symlink.
 */
import { lstatSync, mkdirSync, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** `$XDG_CACHE_HOME/bcmr/SUB` (or `~/.cache/bcmr/SUB`) when it is private to this user, else null. */
export function privateCacheDir(sub: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const uid = process.getuid?.();
  if (uid === undefined) return null;
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  const ours = path.join(base, 'bcmr');
  const dir = path.join(ours, sub);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const baseSt = lstatSync(base);
    if (!baseSt.isDirectory() || (baseSt.uid !== uid && baseSt.uid !== 0) || (baseSt.mode & 0o022) !== 0)
      return null;
    return isPrivate(lstatSync(ours), uid) && isPrivate(lstatSync(dir), uid) ? dir : null;
  } catch {
    return null;
  }
}

/** A real directory (not a link) of `uid` that no one else can enter or write. */
function isPrivate(st: Stats, uid: number): boolean {
  return st.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0;
}
