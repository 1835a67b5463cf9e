/**
 * How two trees differ, for `sync` and `check`: the entries of a source against a destination
 * listing of the same shape (rel paths under each root). Pure: hashing, where asked for, is
 * the caller's (both ends at once, each on its own host).
 */
import type { SourceTree, TreeEntry } from './plan.js';

/** One file's standing: only in the source, in both and different, in both and alike, or only at the destination. */
export type Difference = 'added' | 'changed' | 'same' | 'extra';

export interface FileDiff {
  rel: string;
  kind: Difference;
  /** The source's size (the destination's for `extra`). */
  size: number;
  /** Same size, other mtime: the quick check cannot tell; a hash can. */
  unsure?: boolean;
  /** `changed`: the destination's size. */
  oldSize?: number;
}

export interface TreeDiffResult {
  files: FileDiff[];
  /** Directories only at the destination (deepest last), for `--delete`. */
  extraDirs: string[];
}

/**
 * Quick check as rsync's: a file whose destination has the same size and modification time
 * (to the second: a listing carries whole seconds) is alike without reading it. With
 * `checksum`, every same-size file is marked unsure, for the caller to decide by hash.
 */
export function diffTrees(src: SourceTree, dst: SourceTree | null, checksum: boolean): TreeDiffResult {
  const theirs = new Map<string, TreeEntry>();
  for (const e of dst?.entries ?? []) theirs.set(e.rel, e);
  const files: FileDiff[] = [];
  const mine = new Set<string>();
  for (const e of src.entries) {
    mine.add(e.rel);
    if (e.kind !== 'file') continue;
    const t = theirs.get(e.rel);
    if (t?.kind !== 'file') files.push({ rel: e.rel, kind: 'added', size: e.size });
    else if (t.size !== e.size) files.push({ rel: e.rel, kind: 'changed', size: e.size, oldSize: t.size });
    else if (checksum || Math.floor(t.mtime) !== Math.floor(e.mtime))
      files.push({ rel: e.rel, kind: 'changed', size: e.size, unsure: true, oldSize: t.size });
    else files.push({ rel: e.rel, kind: 'same', size: e.size });
  }
  const extraDirs: string[] = [];
  for (const t of dst?.entries ?? []) {
    if (t.rel === '' || mine.has(t.rel)) continue;
    if (t.kind === 'dir') extraDirs.push(t.rel);
    else files.push({ rel: t.rel, kind: 'extra', size: t.size });
  }
  // Parents before children in a listing: deleting goes the other way.
  extraDirs.sort((a, b) => b.split('/').length - a.split('/').length || (a < b ? 1 : -1));
  return { files, extraDirs };
}
