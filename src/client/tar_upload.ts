/**
 * Fallback uploads as one tar stream into a private staging directory beside the destination,
 * published by a script that travels as the stream's last member, all in one ssh exec:
 *
 *   mkdir -m 700 STAGE; cd STAGE; tar -x; . ./.bcmr-manifest; (EXIT trap: rm -rf STAGE)
 *
 * Files are staged as `STAGE/<k>/<name>`, k numbering their destination directories, so
 * publishing is one `mv` per directory and chunk of names rather than a process per file: what
 * makes 10,000 small files cost about what `tar | ssh tar` costs. The manifest first checks the
 * chunk (sizes with the remote's `stat`, BLAKE3 with `b3sum` where the remote has it), then
 * moves it (`mv -f`, or `mv -n` without -f), then prints one status line per file: only `N ok`
 * counts as published (publish_script.ts reads them). Whatever is left in STAGE (a file that
 * failed, or everything when the stream was cut or Ctrl-C killed it) is removed on exit: the
 * remote never keeps a partial file under a final name, nor the staging directory.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { Blake3Hasher } from '../codec/hash.js';
import { type BatchCallbacks, type FileResult, fileResult, type PutItem } from '../core/items.js';
import { IntegrityError, RemoteError } from '../errors.js';
import { publishOutcomes } from '../transfer/publish_script.js';
import { shellQuote } from '../util/shell.js';
import { type StatFlavour, statFormat } from './remote_shell.js';
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
  stat: StatFlavour;
  b3sum: boolean;
}

/** The deepest directory that holds every destination (where the staging directory goes). */
export function commonDir(paths: readonly string[]): string {
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
  const stage = path.posix.join(
    commonDir(items.map((it) => it.remote)),
    `.bcmr-stage-${randomBytes(6).toString('hex')}`,
  );
  const dirs = new Map<string, number>();
  const sent: { item: PutItem; k: number; name: string; size: number; hash: string; t0: number }[] = [];
  const failed: FileResult<PutItem>[] = [];
  const script = `s=${shellQuote(stage)}
mkdir -m 700 -- "$s" || exit 1
trap 'cd /; rm -rf -- "$s"' EXIT
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 141' PIPE
cd -- "$s" || exit 1
tar -x -m -f - || exit 1
[ -f ${MANIFEST} ] || { echo "the tar stream ended before its manifest" >&2; exit 1; }
${opts.sync ? 'sync\n' : ''}. ./${MANIFEST}
`;
  const result = await run(script, async (write) => {
    const tar = new TarWriter(write);
    for (const item of items) {
      const t0 = performance.now();
      const dir = path.posix.dirname(item.remote);
      const k = dirs.get(dir) ?? dirs.size;
      dirs.set(dir, k);
      const name = path.posix.basename(item.remote);
      try {
        const { size, hash } = await addFile(tar, `${k}/${name}`, item, cb);
        sent.push({ item, k, name, size, hash, t0 });
      } catch (err) {
        failed.push(fileResult(item, t0, { error: err as Error }));
      }
    }
    await tar.bytes(MANIFEST, Buffer.from(manifestScript(sent, [...dirs.keys()], opts)), 0o600);
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
 * The publishing script: per destination directory and chunk of names, check, move, and say
 * per file `I ok` or `I why` (I = the file's place in `sent`).
 */
function manifestScript(
  sent: readonly { k: number; name: string; size: number; hash: string }[],
  dirs: readonly string[],
  opts: TarUploadOptions,
): string {
  const lines = [
    // r I NAME WHY: a name still in the staging directory was not published.
    `r() { if [ -e "$2" ] || [ -L "$2" ]; then echo "$1 $3"; else echo "$1 ok"; fi; }`,
  ];
  const byDir = new Map<number, number[]>();
  for (const [i, s] of sent.entries()) byDir.set(s.k, [...(byDir.get(s.k) ?? []), i]);
  const q = shellQuote;
  for (const [k, all] of byDir) {
    const dest = `${dirs[k].replace(/\/$/, '')}/`;
    for (let c = 0; c < all.length; c += CHUNK_NAMES) {
      const chunk = all.slice(c, c + CHUNK_NAMES);
      const names = chunk.map((i) => q(sent[i].name)).join(' ');
      const sizes = chunk.map((i) => sent[i].size).join('\n');
      const checks = [`[ "$(stat ${statFormat(opts.stat, 'size')} -- ${names})" = ${q(sizes)} ]`];
      if (opts.b3sum)
        checks.push(
          `[ "$(b3sum --no-names -- ${names})" = ${q(chunk.map((i) => sent[i].hash).join('\n'))} ]`,
        );
      const move = opts.force
        ? `e=$(mv -f -- ${names} ${q(dest)} 2>&1)`
        : `mv -n -- ${names} ${q(dest)} 2>/dev/null`;
      const why = opts.force
        ? '"not published: $(printf %s "$e" | tail -n 1)"'
        : "'exists (use -f to overwrite)'";
      lines.push(
        `cd -- "$s/${k}" || exit 1`,
        `if ${checks.join(' && ')}; then ${move}; w=${why}; else w='differs from what was sent (size${opts.b3sum ? ' or BLAKE3' : ''})'; fi`,
        ...chunk.map((i) => `r ${i} ${q(sent[i].name)} "$w"`),
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
