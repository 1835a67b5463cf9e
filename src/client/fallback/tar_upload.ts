/**
 * Fallback uploads as one tar stream into a private staging directory beside the destination,
 * published by a script that travels as the stream's last member, all in one ssh exec:
 *
 *   mkdir -m 700 STAGE; cd STAGE; tar -x; . ./.bcmr-manifest; (EXIT trap: rm -rf STAGE)
 *
 * Files are staged as `STAGE/<k>/<name>`, k numbering their destination directories, so
 * publishing is one `mv` per directory and chunk of names rather than a process per file: what
 * makes 10,000 small files cost about what `tar | ssh tar` costs. The manifest first checks the
 * chunk (BLAKE3 with `b3sum` where the remote has it; sizes are tar's: it exited 0), then
 * moves it (`mv -f`, or `mv -n` without -f), then prints one status line per file: only `N ok`
 * counts as published (publish_script.ts reads them). Whatever is left in STAGE (a file that
 * failed, or everything when the stream was cut or Ctrl-C killed it) is removed on exit: the
 * remote never keeps a partial file under a final name, nor the staging directory.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { Blake3Hasher } from '../../codec/hash.js';
import { type BatchCallbacks, type FileResult, fileResult, type PutItem } from '../../core/items.js';
import { IntegrityError, RemoteError } from '../../errors.js';
import { type ShText, sh, shRaw } from '../../util/shell.js';
import { publishOutcomes } from '../shell/publish_script.js';
import { TarWriter } from './tar_writer.js';

/** Runs `script` in sh on the remote with `feed` writing what follows it on stdin. */
export type FeedRunner = (
  script: string,
  feed: (write: (b: Uint8Array) => Promise<void>) => Promise<void>,
) => Promise<{ code: number | null; stdout: string; stderr: string }>;

/** Names per `stat`/`b3sum`/`mv` call: far below any ARG_MAX with paths of a few hundred bytes. */
const CHUNK_NAMES = 500;
const MANIFEST = '.bcmr-manifest';

export interface TarUploadOptions {
  force: boolean;
  sync: boolean;
  b3sum: boolean;
  /** Destination directories this copy created (empty, replaceable by their staged copies). */
  madeDirs?: ReadonlySet<string>;
}

/** The deepest directory that holds every destination (where the staging directory goes). */
function commonDir(paths: readonly string[]): string {
  let common = path.posix.dirname(paths[0]).split('/');
  for (const p of paths.slice(1)) {
    const parts = path.posix.dirname(p).split('/');
    let i = 0;
    while (i < common.length && i < parts.length && common[i] === parts[i]) i++;
    common = common.slice(0, i);
  }
  return common.join('/') || '/';
}

export async function uploadTar(
  items: readonly PutItem[],
  run: FeedRunner,
  opts: TarUploadOptions,
  cb: BatchCallbacks<PutItem>,
): Promise<void> {
  const root = commonDir(items.map((it) => it.remote));
  const stage = path.posix.join(root, `.bcmr-stage-${randomBytes(6).toString('hex')}`);
  const sent: Sent[] = [];
  const failed: FileResult<PutItem>[] = [];
  // After the cd, the stage must be the directory we made (ours, mode 700) and is then named
  // by its real path: a user who can write the parent cannot swap in another one.
  const script = sh`s=${stage}
mkdir -m 700 -- "$s" || exit 1
trap 'cd /; rm -rf -- "$s"' EXIT
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 141' PIPE
cd -- "$s" || exit 1
[ -O . ] && [ "$(ls -ld . | cut -c1-10)" = drwx------ ] || { echo "the staging directory was replaced" >&2; exit 1; }
s=$(pwd -P) || exit 1
tar -x -m -f - || exit 1
[ -f ${MANIFEST} ] || { echo "the tar stream ended before its manifest" >&2; exit 1; }
${shRaw(opts.sync ? 'sync\n' : '')}. ./${MANIFEST}
`.text;
  const result = await run(script, async (write) => {
    const tar = new TarWriter(write);
    for (const item of items) {
      const t0 = performance.now();
      // Staged as t/<path below root>: the staging tree mirrors the destination's.
      const rel = path.posix.relative(root, path.posix.dirname(item.remote));
      const name = path.posix.basename(item.remote);
      const staged = rel ? `t/${rel}/${name}` : `t/${name}`;
      try {
        const { size, hash } = await addFile(tar, staged, item, cb);
        sent.push({ item, rel, name, staged, size, hash, t0 });
      } catch (err) {
        failed.push(fileResult(item, t0, { error: err as Error }));
      }
    }
    await tar.bytes(MANIFEST, Buffer.from(manifestScript(sent, root, opts)), 0o600);
    await tar.end();
  });
  for (const r of failed) cb.onFileDone?.(r);
  const outcomes =
    result.code === 0
      ? publishOutcomes(result.stdout, sent.length)
      : sent.map(() => `upload failed${result.stderr ? `: ${result.stderr}` : ` (exit ${result.code})`}`);
  for (const [i, s] of sent.entries()) {
    const why = outcomes[i];
    cb.onFileDone?.(
      fileResult(
        s.item,
        s.t0,
        why === null
          ? { bytes: s.size, hash: s.hash }
          : { error: new RemoteError(`${s.item.remote}: ${why}`) },
      ),
    );
  }
}

interface Sent {
  item: PutItem;
  /** Directory below the staging root ('' for the root itself). */
  rel: string;
  name: string;
  /** Path inside the staging directory. */
  staged: string;
  size: number;
  hash: string;
  t0: number;
}

/**
 * One member: its size from the open descriptor. A file that changes size meanwhile still gets
 * exactly the header's bytes (the archive must stay whole) and then fails, so the manifest
 * never publishes it.
 */
async function addFile(
  tar: TarWriter,
  name: string,
  item: PutItem,
  cb: BatchCallbacks<PutItem>,
): Promise<{ size: number; hash: string }> {
  const fd = openSync(item.local, constants.O_RDONLY);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new IntegrityError(`${item.local}: not a regular file`);
    const hasher = new Blake3Hasher();
    const read = await tar.file(name, st.size, 0o644, Math.floor(st.mtimeMs / 1000), fd, (piece) => {
      hasher.update(piece);
      cb.onBytes?.(piece.length, item);
    });
    if (read !== st.size || readSync(fd, Buffer.alloc(1), 0, 1, st.size) > 0)
      throw new IntegrityError(`${item.local}: file changed size while being sent`);
    return { size: st.size, hash: hasher.digest('hex') };
  } finally {
    closeSync(fd);
  }
}

/**
 * The publishing script. Processes are what cost here (a few ms each on a small VM), so whole
 * directories move where they can: the staged directories' destinations that are empty (made
 * by this copy's mkdir step) are removed in one `rmdir`, then each staged directory, shallowest
 * first, is renamed into place in one `mv -n` when its destination does not exist, and only where
 * it does are its files moved, one `mv` per directory and chunk. A fresh tree is thus published
 * by two processes. `mv -n` on a directory never nests it in one that appeared meanwhile. Sizes
 * need no check of their own (`tar -x` exited 0: every member was written whole); BLAKE3 is
 * checked first where the remote has `b3sum`. Then one status line per file, from builtins.
 */
function manifestScript(sent: readonly Sent[], root: string, opts: TarUploadOptions): string {
  const dest = (rel: string) => (rel ? path.posix.join(root, rel) : root);
  const dirs = new Set<string>();
  for (const f of sent) for (let d = f.rel; d; d = parentOf(d)) dirs.add(d);
  const shallowFirst = [...dirs].sort((a, b) => depth(a) - depth(b) || (a < b ? -1 : 1));
  const lines: ShText[] = [
    // The first line mv wrote on stderr, read without a process (only when a -f move failed).
    sh`why() { IFS= read -r e < "$s/.e" || :; w="not published: \${e:-mv failed}"; }`,
    // r I STAGED: a file still in the staging directory was not published; $w says why.
    sh`r() { if [ -e "$s/$2" ] || [ -L "$s/$2" ]; then echo "$1 $w"; else echo "$1 ok"; fi; }`,
    sh`w=${opts.force ? 'not published' : 'exists (use -f to overwrite)'}`,
  ];
  if (opts.b3sum) {
    // A batch that does not hash as sent is published not at all: every file says why.
    lines.push(
      sh`none() { i=0; while [ "$i" -lt ${sent.length} ]; do echo "$i $1"; i=$((i + 1)); done; exit 0; }`,
    );
    for (let c = 0; c < sent.length; c += CHUNK_NAMES) {
      const chunk = sent.slice(c, c + CHUNK_NAMES);
      lines.push(
        sh`[ "$(b3sum --no-names -- ${chunk.map((f) => f.staged)})" = ${chunk.map((f) => f.hash).join('\n')} ] || none 'differs from what was sent (BLAKE3)'`,
      );
    }
  }
  // Only directories this copy made itself are replaced by their staged copies: an existing
  // one (its mode, owner, setgid bit, ACLs) stays and receives the files.
  const made = opts.madeDirs ?? new Set<string>();
  const deepestFirst = [...shallowFirst].reverse().filter((d) => made.has(dest(d)));
  for (let c = 0; c < deepestFirst.length; c += CHUNK_NAMES) {
    const chunk = deepestFirst.slice(c, c + CHUNK_NAMES);
    lines.push(sh`rmdir -- ${chunk.map(dest)} 2>/dev/null`);
  }
  const filesIn = new Map<string, Sent[]>();
  for (const f of sent) filesIn.set(f.rel, [...(filesIn.get(f.rel) ?? []), f]);
  for (const d of ['', ...shallowFirst]) {
    const staged = d ? `t/${d}` : 't';
    const files = filesIn.get(d) ?? [];
    const moveFiles: ShText[] = [];
    for (let c = 0; c < files.length; c += CHUNK_NAMES) {
      const names = files.slice(c, c + CHUNK_NAMES).map((f) => f.name);
      moveFiles.push(
        opts.force
          ? sh`mv -f -- ${names} ${`${dest(d)}/`} 2>"$s/.e" || why`
          : sh`mv -n -- ${names} ${`${dest(d)}/`} 2>/dev/null`,
      );
    }
    const moveFilesText = moveFiles.length
      ? sh`cd -- "$s"/${staged} && { ${shRaw(moveFiles.join('; '))}; }`
      : sh`:`;
    if (!d) lines.push(moveFilesText);
    else
      lines.push(
        sh`if [ -d "$s"/${staged} ]; then if [ -e ${dest(d)} ] || [ -L ${dest(d)} ]; then ${moveFilesText}; else mv -n -- "$s"/${staged} ${`${dest(parentOf(d))}/`} 2>/dev/null; fi; fi`,
      );
  }
  for (const [i, f] of sent.entries()) lines.push(sh`r ${i} ${f.staged}`);
  return `${lines.join('\n')}\n`;
}

function parentOf(rel: string): string {
  const p = path.posix.dirname(rel);
  return p === '.' ? '' : p;
}

function depth(rel: string): number {
  return rel.split('/').length;
}
