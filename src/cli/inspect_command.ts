/**
 * `bcmr ls | stat | du | hash PATH...`: a path here or `host:path` on a remote, looked at
 * through its server. Lines for people, or with --json one event per answer and a `summary`;
 * exit 0 when every path answered, 1 when some did not, 2 on usage.
 */
import type { Command } from 'commander';
import { describeError, ExitCode, exitCodeFor, PathError, UsageError } from '../errors.js';
import type { Entry, Place } from '../transfer/inspect.js';
import { formatBytes } from './format.js';
import { type RemoteRaw, remoteOptions, withRemoteOptions } from './remote_options.js';

type Emit = (o: Record<string, unknown>) => void;
type Look = (p: Place, emit: Emit, json: boolean) => Promise<void>;

export function addInspectCommands(program: Command, setExit: (code: number) => void): void {
  const add = (
    name: string,
    description: string,
    configure: (c: Command) => Command,
    look: (raw: Record<string, unknown>) => Look,
  ) => {
    const c = program
      .command(name)
      .description(description)
      .argument('<paths...>', 'local paths or [user@]host:path');
    withRemoteOptions(configure(c)).action(
      async (paths: string[], raw: RemoteRaw & Record<string, unknown>, cmd: Command) => {
        setExit(await inspectMain(paths, raw, Boolean(cmd.optsWithGlobals().json), look(raw)));
      },
    );
  };

  add(
    'ls',
    'List a directory (or show a file): type, size, modification time, name',
    (c) => c.option('-R, --recursive', 'everything below, not only the entries in the directory'),
    (raw) => async (p, emit, json) => {
      const st = await mustStat(p);
      const entries = st.isDir
        ? (await p.list()).filter((e) => raw.recursive || !e.path.includes('/')).sort(byPath)
        : [st];
      for (const e of entries) {
        const name = e.path === '' ? p.shown : e.path;
        if (json)
          emit({ event: 'entry', root: p.shown, path: name, size: e.size, mtime: e.mtime, isDir: e.isDir });
        else process.stdout.write(`${lsLine(e, name)}\n`);
      }
    },
  );

  add(
    'stat',
    "Show one entry's metadata: type, size, modification time",
    (c) => c,
    () => async (p, emit, json) => {
      const st = await mustStat(p);
      if (json) emit({ event: 'stat', path: p.shown, size: st.size, mtime: st.mtime, isDir: st.isDir });
      else
        process.stdout.write(
          `${p.shown}\n  type: ${st.isDir ? 'directory' : 'file'}\n  size: ${st.size} (${formatBytes(st.size)})\n  modified: ${isoTime(st.mtime)}\n`,
        );
    },
  );

  add(
    'du',
    "A tree's total: bytes in its files, and how many files and directories",
    (c) => c,
    () => async (p, emit, json) => {
      const st = await mustStat(p);
      const entries = st.isDir ? await p.list() : [st];
      const files = entries.filter((e) => !e.isDir);
      const bytes = files.reduce((n, e) => n + e.size, 0);
      const dirs = entries.length - files.length + (st.isDir ? 1 : 0);
      if (json) emit({ event: 'du', path: p.shown, bytes, files: files.length, dirs });
      else
        process.stdout.write(
          `${formatBytes(bytes).padStart(10)}  ${p.shown}  (${bytes} B in ${files.length} file(s), ${dirs} dir(s))\n`,
        );
    },
  );

  add(
    'hash',
    'BLAKE3 of a file (or of a range of it, or of each file of a tree with -r), as b3sum prints it',
    (c) =>
      c
        .option('-r, --recursive', 'hash every file below a directory')
        .option('--offset <bytes>', 'start here', '0')
        .option('--limit <bytes>', 'hash at most this many bytes'),
    (raw) => {
      const offset = wholeNumber(raw.offset, '--offset');
      const limit = raw.limit === undefined ? null : wholeNumber(raw.limit, '--limit');
      return async (p, emit, json) => {
        const st = await mustStat(p);
        if (st.isDir && !raw.recursive)
          throw new UsageError(`${p.shown}: is a directory (use -r to hash its files)`);
        const files = st.isDir
          ? (await p.list())
              .filter((e) => !e.isDir)
              .sort(byPath)
              .map((e) => e.path)
          : [''];
        for (const rel of files) {
          const name = rel === '' ? p.shown : `${p.shown.replace(/\/+$/, '')}/${rel}`;
          const hex = await p.hash(rel, offset, limit);
          if (json)
            emit({
              event: 'hash',
              path: name,
              blake3: hex,
              ...(offset || limit !== null ? { offset, limit } : {}),
            });
          else process.stdout.write(`${hex}  ${name}\n`);
        }
      };
    },
  );
}

const byPath = (a: Entry, b: Entry) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** A place that must exist. */
async function mustStat(p: Place): Promise<Entry> {
  const st = await p.stat();
  if (!st) throw new PathError(`${p.shown}: No such file or directory`);
  return st;
}

function wholeNumber(v: unknown, flag: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new UsageError(`${flag} must be a whole number of bytes, not '${v}'`);
  return n;
}

function isoTime(secs: number): string {
  return new Date(secs * 1000).toISOString().replace('.000Z', 'Z');
}

function lsLine(e: Entry, name: string): string {
  const when = isoTime(e.mtime).replace('T', ' ').slice(0, 16);
  return `${e.isDir ? 'd' : '-'} ${String(e.size).padStart(12)}  ${when}  ${name}${e.isDir && !name.endsWith('/') ? '/' : ''}`;
}

async function inspectMain(paths: string[], raw: RemoteRaw, json: boolean, look: Look): Promise<number> {
  const emit: Emit = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.on('SIGINT', onSignal);
  let failed = 0;
  let code: number = ExitCode.ok;
  try {
    const { withPlaces } = await import('../transfer/inspect.js');
    await withPlaces(
      paths,
      remoteOptions(raw),
      (msg) => process.stderr.write(`bcmr: ${msg}\n`),
      ac.signal,
      async (p) => {
        try {
          await look(p, emit, json);
        } catch (err) {
          if (err instanceof UsageError || ac.signal.aborted) throw err;
          failed++;
          const msg = describeError(err);
          if (json) emit({ event: 'error', path: p.shown, error: msg });
          process.stderr.write(`bcmr: ${msg}\n`);
        }
      },
    );
    code = failed > 0 ? ExitCode.failed : ExitCode.ok;
  } catch (err) {
    code = exitCodeFor(err);
    process.stderr.write(`bcmr: ${describeError(err)}\n`);
  } finally {
    process.off('SIGINT', onSignal);
  }
  if (json) emit({ event: 'summary', failed, exit: code });
  return code;
}
