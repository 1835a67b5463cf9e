/**
 * Removing on a remote through sh (the protocol has no delete): `bcmr remove`, `move`'s source
 * removal and `sync --delete`. Every name is a quoted word (util/shell.ts); each step prints
 * `INDEX ok` or `INDEX why` (rm's own message on one line), so a failure is said for the path
 * it was for and never shifts onto another, and a script run twice reports each path as found.
 */
import { type ShText, sh, shLines, shRaw } from '../../util/shell.js';
import { publishOutcomes } from './publish_script.js';

/** `tree`: rm -rf (a directory and all below it); `file`: rm -f; `dir`: rmdir (must be empty). */
export type RemovalKind = 'tree' | 'file' | 'dir';

export interface Removal {
  path: string;
  kind: RemovalKind;
}

const FUNCTION = `r() {
  case $2 in
    tree) e=$(rm -rf -- "$3" 2>&1) ;;
    file) e=$(rm -f -- "$3" 2>&1) ;;
    *) e=$(rmdir -- "$3" 2>&1) ;;
  esac
  if [ $? -eq 0 ]; then echo "$1 ok"; else echo "$1 $e" | tr '\\n' ' '; echo; fi
}
`;

export function removeScript(items: readonly Removal[]): ShText {
  const lines = items.map((r, i) => sh`r ${i} ${r.kind} ${r.path}`);
  return sh`${shRaw(FUNCTION)}${shLines(lines)}\n`;
}

/** Each step's outcome from the script's output (`INDEX ok` or `INDEX why`, as publishing's). */
export const removeOutcomes = publishOutcomes;

/** Names per `rm` when many files go at once: far below any kernel's argument limit. */
const CHUNK_BYTES = 64 * 1024;

/**
 * Many files and then directories (deepest first, as given) in few processes: one `rm -f` per
 * chunk of names, asked again name by name only when the chunk failed, so a failure is said for
 * its own file. A directory that is not empty (it holds what was excluded) stays, quietly.
 * Prints the index of each file that could not be removed.
 */
export function removeFilesScript(files: readonly string[], dirs: readonly string[]): ShText {
  const lines: ShText[] = [];
  for (let start = 0; start < files.length; ) {
    let end = start;
    let bytes = 0;
    while (end < files.length && (end === start || bytes + files[end].length < CHUNK_BYTES))
      bytes += files[end++].length + 3;
    const chunk = files.slice(start, end);
    lines.push(
      sh`rm -f -- ${chunk} 2>/dev/null || { i=${start}; for f in ${chunk}; do rm -f -- "$f" 2>/dev/null || echo $i; i=$((i+1)); done; }`,
    );
    start = end;
  }
  for (const d of dirs) lines.push(sh`rmdir -- ${d} 2>/dev/null || :`);
  return sh`${shLines(lines)}\n`;
}
