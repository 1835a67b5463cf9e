/**
 * -p (keep mode and mtime) and --no-deref links. The protocol carries neither modes nor a way
 * to set times or make links, so on a remote they are applied by one `sh -s` script per job;
 * locally with chmod/utimes. Directories get their times last, deepest first, because writing
 * into a directory changes its mtime.
 */
import fs from 'node:fs';
import { type ShText, sh, shLines } from '../util/shell.js';

export interface Attrs {
  dest: string;
  mtime: number;
  mode: number | null;
}

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

/**
 * A script that sets modes and mtimes on the remote; null when there is nothing to do. Every
 * line runs, and each entry that fails prints its index (files, then dirs, in their order):
 * see `entryFailures`.
 */
export function remoteAttrScript(files: readonly Attrs[], dirs: readonly Attrs[]): ShText | null {
  const lines: ShText[] = [];
  const entries = [...files, ...dirs];
  const order = [...files.keys(), ...[...dirs.keys()].reverse().map((i) => files.length + i)];
  for (const i of order) {
    const f = entries[i];
    const q = f.dest;
    if (f.mode !== null) lines.push(sh`chmod ${(f.mode & 0o7777).toString(8)} -- ${q} || echo ${i}`);
    // `-d @SECONDS` is GNU's; BSD touch reads the ISO 8601 form instead.
    if (f.mtime > 0)
      lines.push(
        sh`touch -c -m -d ${`@${f.mtime.toFixed(6)}`} -- ${q} 2>/dev/null || touch -c -m -d ${new Date(f.mtime * 1000).toISOString().replace(/\.\d+Z$/, 'Z')} -- ${q} || echo ${i}`,
      );
  }
  return lines.length === 0 ? null : sh`${shLines(lines)}\n`;
}

/** Per entry of a script that prints the index of each failed entry: an Error or null. */
export function entryFailures(stdout: string, count: number, what: string): (Error | null)[] {
  const out: (Error | null)[] = Array.from({ length: count }, () => null);
  for (const line of stdout.split('\n')) {
    const i = Number(line.trim());
    if (line.trim() !== '' && Number.isInteger(i) && i >= 0 && i < count) out[i] = new Error(what);
  }
  return out;
}

/** Recreates symlinks on the remote (`--no-deref`); each that fails prints its index. */
export function remoteLinkScript(links: readonly { dest: string; target: string }[], force: boolean): ShText {
  const flag = force ? '-sfn' : '-s';
  return sh`${shLines(links.map((l, i) => sh`ln ${flag} -- ${l.target} ${l.dest} || echo ${i}`))}\n`;
}
