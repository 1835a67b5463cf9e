/** `bcmr remove` on this machine: what a path is (its link, not what it points to), and removing it. */
import fs from 'node:fs';
import type { RemovalKind } from '../client/shell/remove_script.js';

/** null when missing. A symlink is a file here: removing it never touches what it points to. */
export function statLocal(abs: string): { isDir: boolean } | null {
  const st = fs.lstatSync(abs, { throwIfNoEntry: false });
  return st ? { isDir: st.isDirectory() } : null;
}

/** Removes one operand as `kind` says; null when gone, else why not (rm's words). */
export function removeLocal(t: { abs: string; kind: RemovalKind }): string | null {
  try {
    if (t.kind === 'tree') fs.rmSync(t.abs, { recursive: true });
    else if (t.kind === 'dir') fs.rmdirSync(t.abs);
    else fs.unlinkSync(t.abs);
    return null;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const words: Record<string, string> = {
      EACCES: 'Permission denied',
      EPERM: 'Operation not permitted',
      ENOTEMPTY: 'Directory not empty',
      EBUSY: 'Device or resource busy',
      EROFS: 'Read-only file system',
    };
    return (e.code && words[e.code]) ?? e.message;
  }
}
