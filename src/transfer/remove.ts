/**
 * `bcmr remove PATH...`: local paths and `host:path` ones, as rm does (-r trees, -d empty
 * directories, -f missing is fine, -i asks per path), through the same two `Side`s a copy uses.
 * A remote path is looked up through the host's server first (a server confined by --root
 * refuses what is outside it), then removed by one sh script with every name quoted. `/`, a
 * home directory and anything above one are refused, as are `.` and `..`.
 */
import os from 'node:os';
import path from 'node:path';
import { openRemote, type RemoteOptions } from '../client/pool/open_remote.js';
import type { RemovalKind } from '../client/shell/remove_script.js';
import { type Endpoint, hostLabel, parseEndpoint, type RemoteEndpoint } from '../core/endpoint.js';
import { InterruptedError, PathError, UsageError } from '../errors.js';
import type { PathFilter } from './path_filter.js';
import { LocalSide, RemoteSide, type Side } from './sides.js';

export interface RemoveOptions extends RemoteOptions {
  recursive: boolean;
  /** -f: a missing path is no error. */
  force: boolean;
  /** -d: an empty directory may go without -r. */
  emptyDirs: boolean;
  dryRun: boolean;
  /** -e: entries below a directory that match stay (and so do the directories holding them). */
  exclude: PathFilter;
  /** -i: asked before each path; absent: not asked. */
  askEach?: (question: string) => Promise<boolean>;
  /** Asked once per remote host before anything there goes (unless -f/-y); absent: not asked. */
  askRemote?: (question: string) => Promise<boolean>;
}

export interface RemoveReporter {
  removed(path: string): void;
  failed(path: string, err: Error): void;
  /** A dry run's line. */
  planned(line: string): void;
  notice(msg: string): void;
}

export interface RemoveOutcome {
  removed: number;
  failed: number;
}

/** One operand, looked at: what it is and how it goes. */
interface Target {
  shown: string;
  abs: string;
  kind: RemovalKind;
}

export async function runRemove(
  args: readonly string[],
  opts: RemoveOptions,
  rep: RemoveReporter,
  signal: AbortSignal,
): Promise<RemoveOutcome> {
  if (args.length === 0) throw new UsageError('nothing to remove (usage: bcmr remove PATH...)');
  const outcome: RemoveOutcome = { removed: 0, failed: 0 };
  const r: RemoveReporter = {
    ...rep,
    removed: (p) => {
      outcome.removed++;
      rep.removed(p);
    },
    failed: (p, err) => {
      outcome.failed++;
      rep.failed(p, err);
    },
  };
  // Operands grouped by where they are, in the order first named: one connection per host.
  const groups = new Map<string, { end: Endpoint; paths: string[] }>();
  for (const a of args) {
    const e = parseEndpoint(a);
    const key = e.kind === 'remote' ? `remote:${hostLabel(e)}` : 'local';
    const g = groups.get(key) ?? { end: e, paths: [] };
    g.paths.push(e.path);
    groups.set(key, g);
  }
  for (const { end, paths } of groups.values()) {
    if (signal.aborted) throw new InterruptedError();
    if (end.kind === 'local') await removeOn(new LocalSide(false), null, paths, opts, r, signal);
    else {
      const remote = await openRemote(end, opts, rep.notice, signal);
      const stop = () => void remote.destroy();
      signal.addEventListener('abort', stop, { once: true });
      try {
        await removeOn(new RemoteSide(remote), end, paths, opts, r, signal);
      } finally {
        signal.removeEventListener('abort', stop);
        await (signal.aborted ? remote.destroy() : remote.close());
      }
    }
  }
  if (signal.aborted) throw new InterruptedError();
  return outcome;
}

async function removeOn(
  side: Side,
  host: RemoteEndpoint | null,
  paths: readonly string[],
  opts: RemoveOptions,
  rep: RemoveReporter,
  signal: AbortSignal,
): Promise<void> {
  const targets: Target[] = [];
  for (const p of paths) {
    const shown = host ? `${hostLabel(host)}:${p}` : p;
    try {
      const t = await lookAt(side, p, shown, opts);
      if (!t) continue;
      if (opts.askEach && !opts.dryRun) {
        const what = t.kind === 'tree' ? 'directory tree' : t.kind === 'dir' ? 'directory' : 'file';
        if (!(await opts.askEach(`remove ${what} ${shown}?`))) continue;
      }
      targets.push(t);
    } catch (err) {
      if (signal.aborted) throw new InterruptedError();
      rep.failed(shown, err as Error);
    }
  }
  if (targets.length === 0) return;
  if (host && opts.askRemote && !opts.dryRun) {
    const trees = targets.filter((t) => t.kind === 'tree').length;
    const what = trees > 0 ? ` (${trees} with everything below)` : '';
    if (!(await opts.askRemote(`remove ${targets.length} path(s) on ${hostLabel(host)}${what}?`))) {
      rep.notice(`nothing removed on ${hostLabel(host)}`);
      return;
    }
  }
  // Whole operands go in one step each, unless -e keeps some of what is below, or -n lists it.
  const whole = targets.filter((t) => t.kind !== 'tree' || (opts.exclude.empty && !opts.dryRun));
  for (const t of targets) if (!whole.includes(t)) await removeEntries(side, t, opts, rep);
  if (opts.dryRun) {
    for (const t of whole) rep.planned(`remove ${t.shown}${t.kind === 'file' ? '' : '/'}`);
    return;
  }
  const failed = await side.removeWhole(whole.map((t) => ({ path: t.abs, kind: t.kind })));
  for (const [i, t] of whole.entries()) {
    const why = failed[i];
    if (why) rep.failed(t.shown, new PathError(`${t.shown}: cannot remove: ${why}`));
    else rep.removed(t.shown);
  }
}

/** What an operand is, refused when it must never go; null when missing under -f. */
async function lookAt(side: Side, p: string, shown: string, opts: RemoveOptions): Promise<Target | null> {
  const abs = side.resolve(p);
  const home = side.remote ? side.remote.home : os.homedir();
  const last = path.posix.basename(p.replace(/\/+$/, ''));
  const refusal =
    last === '.' || last === '..'
      ? `'.' and '..' are never removed`
      : abs === '/'
        ? 'the root'
        : p === '' || p === '~' || isAtOrAbove(abs, home)
          ? 'a home directory or above it'
          : null;
  if (refusal) throw new UsageError(`refusing to remove ${shown || p}: ${refusal}`);
  const st = await side.entryKind(abs);
  if (!st) {
    if (opts.force) return null;
    throw new PathError(`${shown}: No such file or directory`);
  }
  if (!st.isDir) return { shown, abs, kind: 'file' };
  if (opts.recursive) return { shown, abs, kind: 'tree' };
  if (opts.emptyDirs) return { shown, abs, kind: 'dir' };
  throw new PathError(`${shown}: is a directory (use -r, or -d for an empty one)`);
}

function isAtOrAbove(abs: string, home: string): boolean {
  if (home === '') return false;
  const a = abs.replace(/\/+$/, '') || '/';
  return a === home || home.startsWith(a === '/' ? '/' : `${a}/`);
}

/**
 * A tree entry by entry (with -e or -n): files, then directories deepest first; a directory
 * still holding what -e kept stays, as it must.
 */
async function removeEntries(side: Side, t: Target, opts: RemoveOptions, rep: RemoveReporter): Promise<void> {
  const failures: { path: string; error: Error }[] = [];
  const tree = await side.tree(
    t.abs,
    {
      recursive: true,
      deref: false,
      exclude: opts.exclude,
      onSkip: (abs, kind) => rep.notice(`${abs}: ${kind}, left in place`),
    },
    failures,
  );
  for (const f of failures) rep.failed(f.path, f.error);
  if (!tree) return;
  const at = (rel: string) =>
    rel === '' ? t.abs : side.remote ? path.posix.join(t.abs, rel) : path.join(t.abs, rel);
  const files = tree.entries.filter((e) => e.kind !== 'dir').map((e) => at(e.rel));
  const dirs = tree.entries
    .filter((e) => e.kind === 'dir')
    .map((e) => at(e.rel))
    .reverse();
  if (opts.dryRun) {
    for (const f of files) rep.planned(`remove ${f}`);
    for (const d of dirs) rep.planned(`remove ${d}/`);
    return;
  }
  const failed = await side.remove(files, dirs);
  for (const [i, f] of files.entries()) {
    const why = failed[i];
    if (why) rep.failed(f, new PathError(`${f}: cannot remove: ${why.message}`));
    else rep.removed(f);
  }
}
