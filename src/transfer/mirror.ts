/**
 * What `bcmr sync` adds to a copy (copy.ts runs it): DST is SRC's copy itself, only the files
 * that differ are sent (tree_diff.ts; large changed ones as deltas), and with --delete what DST
 * has and SRC lacks goes after a transfer without failures. `bcmr check` (check.ts) shares the
 * hashing of files the quick check cannot clear.
 */
import path from 'node:path';
import { DELTA_MIN_BYTES } from '../client/serve/delta.js';
import { PathError, UsageError } from '../errors.js';
import { type CopyPlan, type DestInfo, type SourceTree, under } from './plan.js';
import type { Side } from './sides.js';
import { diffTrees, type FileDiff } from './tree_diff.js';

export interface MirrorOptions {
  checksum: boolean;
  delete: boolean;
  /** More deletions than this: none is done, and the job fails. */
  maxDelete: number;
}

/** What a sync leaves to do after the transfer: the destination's entries SRC lacks. */
export interface Extras {
  files: string[];
  dirs: string[];
  /** -n: what would happen, itemised (`+` new, `~` changed, `-` deleted). */
  lines: string[];
}

/**
 * sync's destination is SRC's copy itself, never a directory to put SRC in: planned as a
 * destination that does not exist yet, whose parent is made when missing (not for -n).
 */
export async function mirrorDestInfo(to: Side, p: string, dryRun: boolean): Promise<DestInfo> {
  const real = await to.destInfo(p, false);
  if (!dryRun && real.isDir === null && !real.parentExists) await to.makeParents(real.path);
  return { ...real, isDir: null, mustBeDir: false, parentExists: true };
}

/**
 * Keeps in `plan` only the files that differ from the destination's (tree_diff.ts: size and
 * mtime, or BLAKE3 where those cannot tell or with -c, both ends hashing at once); returns
 * the destination's entries SRC lacks. Excluded paths are in neither listing: never deleted.
 * Changed files large enough on both sides go into `deltas` (destination path -> its size).
 */
export async function mirrorPlan(
  plan: CopyPlan,
  src: SourceTree,
  dst: SourceTree | null,
  sides: { from: Side; to: Side; destRoot: string },
  mirror: MirrorOptions,
  deltas: Map<string, number>,
): Promise<Extras> {
  const { from, to, destRoot } = sides;
  const diff = diffTrees(src, dst, mirror.checksum);
  // Hashed ahead only with -c: otherwise a file the quick check cannot clear is simply sent,
  // as rsync does (a small one whole; a large one as a delta, which sends nothing of a file
  // that only was touched), and -p gives it the source's mtime for the next run. A file
  // either side cannot hash stays changed, and is sent.
  if (mirror.checksum) await settleByHash(from, to, src.root, destRoot, diff.files);
  for (const f of diff.files)
    if (f.kind === 'changed' && f.size >= DELTA_MIN_BYTES && (f.oldSize ?? 0) >= DELTA_MIN_BYTES)
      deltas.set(under(destRoot, f.rel), f.oldSize ?? 0);
  const send = new Map(
    diff.files
      .filter((f) => f.kind === 'added' || f.kind === 'changed')
      .map((f) => [under(destRoot, f.rel), f]),
  );
  plan.files = plan.files.filter((f) => send.has(f.dest));
  plan.bytes = plan.files.reduce((n, f) => n + f.size, 0);
  // Directories: made where missing, and their mode and time set only where they differ or
  // where files come or go inside them (which changes a directory's mtime).
  const theirs = new Map(
    (dst?.entries ?? []).filter((e) => e.kind === 'dir').map((e) => [under(destRoot, e.rel), e]),
  );
  const touched = new Set<string>();
  const parentOf = (p: string) => path.posix.dirname(p);
  for (const f of plan.files) touched.add(parentOf(f.dest));
  for (const f of diff.files) if (f.kind === 'extra') touched.add(parentOf(under(destRoot, f.rel)));
  for (const d of diff.extraDirs) touched.add(parentOf(under(destRoot, d)));
  plan.dirs = plan.dirs.filter((d) => {
    const t = theirs.get(d.dest);
    return !t || touched.has(d.dest) || Math.floor(t.mtime) !== Math.floor(d.mtime);
  });
  const extras: Extras = {
    files: diff.files.filter((f) => f.kind === 'extra').map((f) => under(destRoot, f.rel)),
    dirs: diff.extraDirs.map((d) => under(destRoot, d)),
    lines: [...send.values()].map(
      (f) => `${f.kind === 'added' ? '+' : '~'} ${f.rel || path.posix.basename(destRoot)} (${f.size} B)`,
    ),
  };
  if (mirror.delete) {
    for (const f of diff.files) if (f.kind === 'extra') extras.lines.push(`- ${f.rel} (${f.size} B)`);
    for (const d of diff.extraDirs) extras.lines.push(`- ${d}/`);
  }
  return extras;
}

/** How deleteExtras reports: the job's notices, failures and deletions. */
export interface DeleteReport {
  notice(msg: string): void;
  fail(path: string, err: Error): void;
  deleted(path: string): void;
}

/**
 * --delete, in rsync's safe order: only after a transfer with no failure (`failedSoFar`), and
 * not at all when more than --max-delete would go. Files first, then directories deepest
 * first (one still holding excluded entries stays).
 */
export async function deleteExtras(
  to: Side,
  extras: Extras,
  maxDelete: number,
  failedSoFar: number,
  report: DeleteReport,
): Promise<void> {
  const count = extras.files.length + extras.dirs.length;
  if (count === 0) return;
  if (failedSoFar > 0) {
    report.notice(`not deleting ${count} entr${count === 1 ? 'y' : 'ies'}: ${failedSoFar} file(s) failed`);
    return;
  }
  if (count > maxDelete) {
    report.fail('', new UsageError(`--max-delete ${maxDelete}: ${count} deletions needed, none done`));
    return;
  }
  const failed = await to.remove(extras.files, extras.dirs);
  for (const [i, p] of [...extras.files, ...extras.dirs].entries()) {
    const why = failed[i];
    if (why) report.fail(p, new PathError(`${p}: could not delete: ${why.message}`));
    else report.deleted(p);
  }
}

/**
 * The files the quick check could not clear (`unsure`), decided by BLAKE3: each side hashes
 * its own, both at once; alike ones become `same`. Returns what could not be hashed (those
 * stay `changed`).
 */
export async function settleByHash(
  from: Side,
  to: Side,
  srcRoot: string,
  dstRoot: string,
  files: readonly FileDiff[],
): Promise<{ path: string; error: Error }[]> {
  const unsure = files.filter((f) => f.unsure);
  if (unsure.length === 0) return [];
  const [mine, theirs] = await Promise.all([
    from.hashes(unsure.map((f) => under(srcRoot, f.rel))),
    to.hashes(unsure.map((f) => under(dstRoot, f.rel))),
  ]);
  const failures: { path: string; error: Error }[] = [];
  for (const [i, f] of unsure.entries()) {
    const [x, y] = [mine[i], theirs[i]];
    if (x instanceof Error) failures.push({ path: under(srcRoot, f.rel), error: x });
    else if (y instanceof Error) failures.push({ path: under(dstRoot, f.rel), error: y });
    else if (x === y) f.kind = 'same';
  }
  return failures;
}
