/**
 * Planning a copy: what each source is (a file, or a tree walked with excludes), and where
 * each entry lands under cp/scp rules. Pure apart from the local walk; the remote side's
 * listing arrives as data, so both directions plan alike.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PathError } from '../errors.js';

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
export function baseName(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  return trimmed === '' ? '' : path.posix.basename(trimmed);
}

export function isExcluded(rel: string, exclude: readonly RegExp[]): boolean {
  return exclude.some((re) => re.test(rel));
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

export interface WalkOptions {
  recursive: boolean;
  /** Follow symlinks (default) or keep them as links (`--no-deref`). */
  deref: boolean;
  exclude: readonly RegExp[];
  /** Told of each entry left out because it is not a file, directory or link (a FIFO...). */
  onSkip?: (abs: string, kind: string) => void;
}

/** What a special file is, for the skip notice. */
function specialKind(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/**
 * Describes one local source. A directory is walked depth-first, parents before children;
 * followed directory links are entered once per (dev, inode) on the current path (no cycles).
 */
export function walkLocal(
  root: string,
  opts: WalkOptions,
  failures: { path: string; error: Error }[],
): SourceTree | null {
  let st: fs.Stats;
  try {
    st = opts.deref ? fs.statSync(root) : fs.lstatSync(root);
  } catch (err) {
    failures.push({ path: root, error: asPathError(root, err) });
    return null;
  }
  const name = baseName(path.resolve(root));
  if (!st.isDirectory()) {
    if (st.isSymbolicLink()) {
      return { root, name, isDir: false, entries: [linkEntry('', root, st)] };
    }
    if (!st.isFile()) {
      failures.push({ path: root, error: new PathError(`${root}: not a regular file`) });
      return null;
    }
    return { root, name, isDir: false, entries: [fileEntry('', st)] };
  }
  if (!opts.recursive) {
    failures.push({ path: root, error: new PathError(`${root}: is a directory (use -r to copy trees)`) });
    return null;
  }
  const entries: TreeEntry[] = [
    { rel: '', kind: 'dir', size: 0, mtime: st.mtimeMs / 1000, mode: st.mode & 0o7777 },
  ];
  const stack = new Set<string>([`${st.dev}:${st.ino}`]);
  const visit = (dirAbs: string, dirRel: string): void => {
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(dirAbs, { withFileTypes: true });
    } catch (err) {
      failures.push({ path: dirAbs, error: asPathError(dirAbs, err) });
      return;
    }
    for (const d of names) {
      const rel = dirRel === '' ? d.name : `${dirRel}/${d.name}`;
      if (isExcluded(rel, opts.exclude)) continue;
      const abs = path.join(dirAbs, d.name);
      let s: fs.Stats;
      try {
        s = d.isSymbolicLink() && opts.deref ? fs.statSync(abs) : fs.lstatSync(abs);
      } catch (err) {
        failures.push({ path: abs, error: asPathError(abs, err) });
        continue;
      }
      if (s.isSymbolicLink()) entries.push(linkEntry(rel, abs, s));
      else if (s.isDirectory()) {
        const id = `${s.dev}:${s.ino}`;
        if (stack.has(id)) {
          failures.push({ path: abs, error: new PathError(`${abs}: directory loop, not followed`) });
          continue;
        }
        entries.push({ rel, kind: 'dir', size: 0, mtime: s.mtimeMs / 1000, mode: s.mode & 0o7777 });
        stack.add(id);
        visit(abs, rel);
        stack.delete(id);
      } else if (s.isFile()) entries.push(fileEntry(rel, s));
      // Sockets, FIFOs and devices are skipped, as cp -r without special-file flags, and said:
      // reading a FIFO could block for ever, and a device could be endless.
      else opts.onSkip?.(abs, specialKind(s));
    }
  };
  visit(root, '');
  return { root, name, isDir: true, entries };
}

function fileEntry(rel: string, st: fs.Stats): TreeEntry {
  return { rel, kind: 'file', size: st.size, mtime: st.mtimeMs / 1000, mode: st.mode & 0o7777 };
}

function linkEntry(rel: string, abs: string, st: fs.Stats): TreeEntry {
  return { rel, kind: 'link', size: 0, mtime: st.mtimeMs / 1000, mode: null, link: fs.readlinkSync(abs) };
}

export function asPathError(p: string, err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  const what: Record<string, string> = {
    ENOENT: 'No such file or directory',
    EACCES: 'Permission denied',
    ENOTDIR: 'Not a directory',
    ELOOP: 'Too many levels of symbolic links',
  };
  return new PathError(`${p}: ${(e.code && what[e.code]) ?? e.message}`, { cause: err });
}

/**
 * A name from a server's listing is only used if it is plainly relative and stays below the
 * listed directory: no empty, `.` or `..` component, no NUL, not absolute (CVE-2019-6111).
 */
export function safeRelative(rel: string): boolean {
  if (rel === '' || rel.startsWith('/') || rel.includes('\0')) return false;
  return rel.split('/').every((c) => c !== '' && c !== '.' && c !== '..');
}
