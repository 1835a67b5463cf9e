/**
 * Walking a local source: a file, or a tree depth-first (parents before children) with
 * excludes, links followed or kept, loops and special files reported, never followed or read.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PathError } from '../errors.js';
import { errnoText } from '../util/errno_text.js';
import type { PathFilter } from './path_filter.js';
import { baseName, isExcluded, type SourceTree, type TreeEntry } from './plan.js';

export interface WalkOptions {
  recursive: boolean;
  /** Follow symlinks (default) or keep them as links (`--no-deref`). */
  deref: boolean;
  exclude: PathFilter;
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
      const abs = path.join(dirAbs, d.name);
      let s: fs.Stats;
      try {
        s = d.isSymbolicLink() && opts.deref ? fs.statSync(abs) : fs.lstatSync(abs);
      } catch (err) {
        failures.push({ path: abs, error: asPathError(abs, err) });
        continue;
      }
      if (isExcluded(rel, opts.exclude, s.isDirectory())) continue;
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

function asPathError(p: string, err: unknown): Error {
  return new PathError(`${p}: ${errnoText(err)}`, { cause: err });
}
