/**
 * -p (keep mode and mtime) and --no-deref links. The protocol carries neither modes nor a way
 * to set times or make links, so on a remote they are applied by one `sh -s` script per job;
 * locally with chmod/utimes. Directories get their times last, deepest first, because writing
 * into a directory changes its mtime.
 */
import fs from 'node:fs';
import { shellQuote } from '../util/shell.js';

export interface Attrs {
  dest: string;
  mtime: number;
  mode: number | null;
}

export function applyLocalAttrs(files: readonly Attrs[], dirs: readonly Attrs[]): void {
  for (const f of [...files, ...[...dirs].reverse()]) {
    try {
      if (f.mode !== null) fs.chmodSync(f.dest, f.mode);
      if (f.mtime > 0) fs.utimesSync(f.dest, f.mtime, f.mtime);
    } catch {
      // Best effort, like cp -p on a filesystem that refuses: the data is already there.
    }
  }
}

/** A script that sets modes and mtimes on the remote; null when there is nothing to do. */
export function remoteAttrScript(files: readonly Attrs[], dirs: readonly Attrs[]): string | null {
  const lines: string[] = [];
  for (const f of [...files, ...[...dirs].reverse()]) {
    const q = shellQuote(f.dest);
    if (f.mode !== null) lines.push(`chmod ${(f.mode & 0o7777).toString(8)} -- ${q}`);
    // `-d @SECONDS` is GNU's; BSD touch reads the ISO 8601 form instead.
    if (f.mtime > 0)
      lines.push(
        `touch -m -d @${f.mtime.toFixed(6)} -- ${q} 2>/dev/null || touch -m -d ${new Date(f.mtime * 1000).toISOString().replace(/\.\d+Z$/, 'Z')} -- ${q}`,
      );
  }
  return lines.length === 0 ? null : `${lines.join('\n')}\n`;
}

/** Recreates symlinks on the remote (`--no-deref`). */
export function remoteLinkScript(links: readonly { dest: string; target: string }[], force: boolean): string {
  const flag = force ? '-sfn' : '-s';
  return `${links.map((l) => `ln ${flag} -- ${shellQuote(l.target)} ${shellQuote(l.dest)}`).join('\n')}\n`;
}
