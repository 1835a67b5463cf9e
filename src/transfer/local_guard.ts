/**
 * Keeps a download inside its destination (CVE-2019-6111): directories are created one at a
 * time, never through a symlink that leads outside the copied root, and a file is only written
 * where its parent's real path is inside that root.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PathError } from '../errors.js';
import type { DestInfo } from './plan.js';

export class LocalTreeGuard {
  /** Real path of the directory everything must stay in. */
  private readonly base: string;
  private readonly checked = new Map<string, Error | null>();

  constructor(dest: DestInfo) {
    this.base = realOrSelf(dest.isDir ? dest.path : path.dirname(path.resolve(dest.path)));
  }

  /** Creates `dir` (its parent must exist and be safe); returns the refusal, if any. */
  mkdir(dir: string): Error | null {
    const parentErr = this.checkParent(dir);
    if (parentErr) return parentErr;
    try {
      const st = fs.lstatSync(dir);
      if (st.isSymbolicLink()) return new PathError(`${dir}: is a symlink in the destination, not followed`);
      if (!st.isDirectory()) return new PathError(`${dir}: exists and is not a directory`);
    } catch {
      try {
        fs.mkdirSync(dir);
      } catch (err) {
        return new PathError(`${dir}: ${(err as Error).message}`);
      }
    }
    this.checked.set(path.resolve(dir), null);
    return null;
  }

  /** Null when `file`'s parent directory really is inside the destination. */
  checkParent(file: string): Error | null {
    const parent = path.dirname(path.resolve(file));
    const known = this.checked.get(parent);
    if (known !== undefined) return known;
    let err: Error | null = null;
    try {
      const real = fs.realpathSync.native(parent);
      const base = this.base;
      if (real !== base && !real.startsWith(base.endsWith('/') ? base : `${base}/`)) {
        err = new PathError(`${file}: parent resolves outside the destination (${real}), refused`);
      }
    } catch (e) {
      err = new PathError(`${file}: ${(e as Error).message}`);
    }
    this.checked.set(parent, err);
    return err;
  }
}

function realOrSelf(p: string): string {
  try {
    return fs.realpathSync.native(p);
  } catch {
    return path.resolve(p);
  }
}
