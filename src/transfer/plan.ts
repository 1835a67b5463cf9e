/**
 * Planning a copy: where each entry of the sources (a local walk, walk.ts, or a remote
 * listing, as data) lands under cp/scp rules, with excludes. Pure: both directions plan alike.
 */
import path from 'node:path';
import { PathError } from '../errors.js';
import type { PathFilter } from './path_filter.js';

export type EntryKind = 'file' | 'dir' | 'link';

export interface TreeEntry {
  /** Relative to the source root, `/`-separated; '' for a file source itself. */
  rel: string;
  kind: EntryKind;
  size: number;
  /** Seconds since the epoch (fractional locally, whole seconds from a server). */
  mtime: number;
  /** Permission bits, when known (local sources). */
  mode: number | null;
  /** Symlink target, for `kind = 'link'`. */
  link?: string;
}

export interface SourceTree {
  /** Where the source is, as the side holding it names it. */
  root: string;
  /** The name it gets under a destination directory. */
  name: string;
  isDir: boolean;
  /** For a directory: every entry below it, parents first. For a file: one entry, rel ''. */
  entries: TreeEntry[];
}

export interface PlannedFile {
  src: string;
  dest: string;
  size: number;
  mtime: number;
  mode: number | null;
}

export interface CopyPlan {
  /** Directories to create, parents first (includes each copied tree's own root). */
  dirs: { dest: string; mtime: number; mode: number | null }[];
  files: PlannedFile[];
  links: { dest: string; target: string }[];
  /** Sources or entries refused while planning; they count as failed files. */
  failures: { path: string; error: Error }[];
  bytes: number;
}

export interface DestInfo {
  path: string;
  /** null: does not exist. */
  isDir: boolean | null;
  /** The user typed a trailing slash: the destination must be a directory. */
  mustBeDir: boolean;
  /** Whether the destination's parent exists (only asked when the destination does not). */
  parentExists: boolean;
}

/** The last path component, ignoring trailing slashes ('' stays ''). */
/** `rel` under `root` ('' is the root itself). */
export function under(root: string, rel: string): string {
  return rel === '' ? root : path.posix.join(root, rel);
}

export function baseName(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  return trimmed === '' ? '' : path.posix.basename(trimmed);
}

export function isExcluded(rel: string, filter: PathFilter, isDir: boolean): boolean {
  return filter.excludes(rel, isDir);
}

/** Places every source under the destination by cp -r rules and lists the work. */
export function planCopy(sources: readonly SourceTree[], dest: DestInfo, multiple: boolean): CopyPlan {
  const plan: CopyPlan = { dirs: [], files: [], links: [], failures: [], bytes: 0 };
  const join = (a: string, b: string) => (b === '' ? a : path.posix.join(a, b));
  if (multiple && dest.isDir !== true) {
    throw new PathError(`target '${dest.path}' is not a directory`);
  }
  if (dest.isDir === null && !dest.parentExists) {
    throw new PathError(`${dest.path}: No such file or directory (parent directory missing)`);
  }
  for (const src of sources) {
    let target: string;
    if (dest.isDir === true) target = join(dest.path, src.name);
    else if (src.isDir && dest.isDir === false) {
      plan.failures.push({
        path: src.root,
        error: new PathError(`cannot overwrite non-directory '${dest.path}' with directory '${src.root}'`),
      });
      continue;
    } else if (!src.isDir && dest.mustBeDir) {
      throw new PathError(`${dest.path}: Not a directory`);
    } else target = dest.path;
    for (const e of src.entries) {
      const to = join(target, e.rel);
      const from = join(src.root, e.rel);
      if (e.kind === 'dir') plan.dirs.push({ dest: to, mtime: e.mtime, mode: e.mode });
      else if (e.kind === 'link') plan.links.push({ dest: to, target: e.link ?? '' });
      else {
        plan.files.push({ src: from, dest: to, size: e.size, mtime: e.mtime, mode: e.mode });
        plan.bytes += e.size;
      }
    }
  }
  return plan;
}

/**
 * A name from a server's listing is only used if it is plainly relative and stays below the
 * listed directory: no empty, `.` or `..` component, no NUL, not absolute (CVE-2019-6111).
 */
export function safeRelative(rel: string): boolean {
  if (rel === '' || rel.startsWith('/') || rel.includes('\0')) return false;
  return rel.split('/').every((c) => c !== '' && c !== '.' && c !== '..');
}
