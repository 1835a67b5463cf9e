/**
 * -p on this machine: chmod and utimes (on a remote: client/shell/attrs_script.ts). Directories
 * get their times last, deepest first, because writing into a directory changes its mtime.
 */
import fs from 'node:fs';
import type { Attrs } from '../client/shell/attrs_script.js';

/**
 * Applies each entry (files, then directories deepest first); returns what failed for each
 * entry of `files` then `dirs`, in their order (null where all went well), as cp -p reports.
 */
export function applyLocalAttrs(files: readonly Attrs[], dirs: readonly Attrs[]): (Error | null)[] {
  const attempt = (f: Attrs, withTime: boolean): Error | null => {
    try {
      if (f.mode !== null) fs.chmodSync(f.dest, f.mode);
      if (withTime && f.mtime > 0) fs.utimesSync(f.dest, f.mtime, f.mtime);
      return null;
    } catch (err) {
      return err as Error;
    }
  };
  const out = [...files.map((f) => attempt(f, true)), ...dirs.map((d) => attempt(d, false))];
  // Directory times last, deepest first: writing into a directory changes its mtime.
  for (let i = dirs.length - 1; i >= 0; i--) {
    const d = dirs[i];
    if (d.mtime <= 0) continue;
    try {
      fs.utimesSync(d.dest, d.mtime, d.mtime);
    } catch (err) {
      out[files.length + i] ??= err as Error;
    }
  }
  return out;
}
