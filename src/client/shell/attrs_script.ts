/**
 * -p (keep mode and mtime) and --no-deref links on a remote: the protocol carries neither modes
 * nor a way to set times or make links, so they are applied by one `sh -s` script per job, in
 * which every line runs and each entry that fails prints its index.
 */
import { type ShText, sh, shLines, shRaw } from '../../util/shell.js';

/** What -p keeps of one destination entry. */
export interface Attrs {
  dest: string;
  mtime: number;
  mode: number | null;
}

/**
 * Sets each entry's mode and mtime in one process where the remote has a Node (every host
 * running a bcmr server has one): a fork of chmod and touch per file costs seconds per
 * thousand files. The entries travel as JSON lines in a quoted here-document (a JSON line
 * starts with `[`, so none can end it; nothing in it is expanded). Errors as the sh version.
 */
const NODE_ATTRS = [
  "const fs=require('fs');let b='';process.stdin.setEncoding('utf8');",
  "process.stdin.on('data',(d)=>{b+=d}).on('end',()=>{for(const l of b.split('\\n')){if(!l)continue;",
  'const [i,p,m,t]=JSON.parse(l);try{if(m!==null)fs.chmodSync(p,m);',
  "if(t>0){let a;try{a=fs.statSync(p).atime}catch(e){if(e.code==='ENOENT')continue;throw e}fs.utimesSync(p,a,t)}}",
  "catch{process.stdout.write(i+'\\n')}}});",
].join('');

/** Ends the here-document; never the start of a JSON line. */
const EOF_MARK = 'BCMR_ATTRS_END';

/**
 * A script that sets modes and mtimes on the remote; null when there is nothing to do. Every
 * entry is tried, and each that fails prints its index (files, then dirs, in their order):
 * see `entryFailures`. Directories' times last, deepest first. With a Node there, one process
 * does it all; otherwise one chmod and one touch per entry.
 */
export function remoteAttrScript(files: readonly Attrs[], dirs: readonly Attrs[]): ShText | null {
  const lines: ShText[] = [];
  const json: string[] = [];
  const entries = [...files, ...dirs];
  const order = [...files.keys(), ...[...dirs.keys()].reverse().map((i) => files.length + i)];
  for (const i of order) {
    const f = entries[i];
    const q = f.dest;
    const mode = f.mode === null ? null : f.mode & 0o7777;
    if (mode === null && !(f.mtime > 0)) continue;
    json.push(JSON.stringify([i, q, mode, Math.max(f.mtime, 0)]));
    if (mode !== null) lines.push(sh`chmod ${mode.toString(8)} -- ${q} || echo ${i}`);
    // `-d @SECONDS` is GNU's; BSD touch reads the ISO 8601 form instead.
    if (f.mtime > 0)
      lines.push(
        sh`touch -c -m -d ${`@${f.mtime.toFixed(6)}`} -- ${q} 2>/dev/null || touch -c -m -d ${new Date(f.mtime * 1000).toISOString().replace(/\.\d+Z$/, 'Z')} -- ${q} || echo ${i}`,
      );
  }
  if (lines.length === 0) return null;
  // The data is text of ours (JSON), not sh: it is only ever read by the node program.
  const data = shRaw(`${json.join('\n')}\n${EOF_MARK}\n`);
  return sh`if [ -z "$BCMR_ATTRS_SH" ] && command -v node >/dev/null 2>&1; then
node -e ${NODE_ATTRS} <<'${shRaw(EOF_MARK)}'
${data}else
${shLines(lines)}
fi
`;
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
