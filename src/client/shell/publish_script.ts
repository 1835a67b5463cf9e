/**
 * Publishing verified remote temp files (resumed and striped uploads) under their final names.
 * The protocol has no rename (PROTOCOL.md 17.2), so one `sh -s` script does it for every file,
 * and prints one status line per file: a file is reported copied only when its own line says
 * `ok`, i.e. it is under its final name. Without -f, `ln` refuses an existing name atomically
 * (then the temp name is removed); with -f, `mv -f` replaces a file but never a directory (it
 * would move the file *into* it). A failure leaves that file's temp file for another -C run and
 * does not stop the others.
 */
import { type ShText, sh, shLines, shRaw } from '../../util/shell.js';

export interface Publish {
  from: string;
  to: string;
}

const FUNCTION = `p() {
  if [ -d "$3" ] && [ ! -L "$3" ]; then echo "$1 is a directory"; return; fi
  if [ "$4" = f ]; then
    e=$(mv -f -- "$2" "$3" 2>&1) || { echo "$1 $e" | tr '\\n' ' '; echo; return; }
  else
    if [ -e "$3" ] || [ -L "$3" ]; then echo "$1 exists (use -f to overwrite)"; return; fi
    if e=$(ln -- "$2" "$3" 2>&1); then rm -f -- "$2"
    elif [ -e "$3" ] || [ -L "$3" ]; then echo "$1 exists (use -f to overwrite)"; return
    else e=$(mv -- "$2" "$3" 2>&1) || { echo "$1 $e" | tr '\\n' ' '; echo; return; }
    fi
  fi
  echo "$1 ok"
}
`;

export function publishScript(files: readonly Publish[], force: boolean): ShText {
  const lines = files.map((f, i) => sh`p ${i} ${f.from} ${f.to} ${force ? 'f' : 'n'}`);
  return sh`${shRaw(FUNCTION)}${shLines(lines)}\n`;
}

/** Each file's outcome from the script's output: null when published, else why not. */
export function publishOutcomes(stdout: string, count: number): (string | null)[] {
  const out: (string | null)[] = Array.from({ length: count }, () => 'no status from the remote script');
  for (const line of stdout.split('\n')) {
    const m = /^(\d+) (.*)$/.exec(line.trim());
    if (!m) continue;
    const i = Number(m[1]);
    if (i < count) out[i] = m[2] === 'ok' ? null : m[2].trim();
  }
  return out;
}
