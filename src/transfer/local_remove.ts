/** `bcmr remove` on this machine: what a path is (its link, not what it points to), and removing it. */
import fs from 'node:fs';
import type { Removal } from '../client/shell/remove_script.js';
import { errnoText } from '../util/errno_text.js';

/** null when missing. A symlink is a file here: removing it never touches what it points to. */
export function statLocal(abs: string): { isDir: boolean } | null {
  const st = fs.lstatSync(abs, { throwIfNoEntry: false });
  return st ? { isDir: st.isDirectory() } : null;
}

/** Removes one operand as `kind` says; null when gone, else why not (rm's words). */
export function removeLocal(t: Removal): string | null {
  try {
    if (t.kind === 'tree') fs.rmSync(t.path, { recursive: true });
    else if (t.kind === 'dir') fs.rmdirSync(t.path);
    else fs.unlinkSync(t.path);
    return null;
  } catch (err) {
    return errnoText(err);
  }
}
