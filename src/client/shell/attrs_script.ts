/**
 * -p (keep mode and mtime) and --no-deref links on a remote: the protocol carries neither modes
 * nor a way to set times or make links, so they are applied by one `sh -s` script per job, in
 * which every line runs and each entry that fails prints its index.
 */
import { type ShText, sh, shLines } from '../../util/shell.js';

/** What -p keeps of one destination entry. */
export interface Attrs {
  dest: string;
  mtime: number;
  mode: number | null;
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
