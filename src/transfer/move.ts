/**
 * `bcmr move SRC... DST` (mv): on this machine a rename(2) where it can (same filesystem);
 * otherwise, and whenever an end is remote, the one copy pipeline with -V and -p, removing each
 * source only once its copy is verified (copy.ts, removeSources). Nothing is removed whose
 * copy failed or was skipped; an existing destination is refused without -f, as copy does.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseEndpoint } from '../core/endpoint.js';
import { ExistsError, InterruptedError, PathError, UsageError } from '../errors.js';
import { type CopyOptions, runCopy } from './copy.js';
import type { CopyOutcome, CopyReporter } from './events.js';

export async function runMove(
  srcArgs: readonly string[],
  destArg: string,
  opts: CopyOptions,
  rep: CopyReporter,
  signal: AbortSignal,
): Promise<CopyOutcome> {
  if (srcArgs.length === 0)
    throw new UsageError('missing destination or source (usage: bcmr move SRC... DST)');
  const copyOpts: CopyOptions = {
    ...opts,
    recursive: true,
    preserve: true,
    verify: true,
    removeSources: true,
  };
  const allLocal = [...srcArgs, destArg].every((a) => parseEndpoint(a).kind === 'local');
  if (!allLocal) return runCopy(srcArgs, destArg, copyOpts, rep, signal);

  const outcome: CopyOutcome = { files: 0, failed: 0, bytes: 0, dirs: 0 };
  const intoDir =
    srcArgs.length > 1 ||
    destArg.endsWith('/') ||
    fs.statSync(destArg, { throwIfNoEntry: false })?.isDirectory();
  if (srcArgs.length > 1 && !intoDir) throw new UsageError(`target '${destArg}' is not a directory`);
  const across: string[] = [];
  const t0 = performance.now();
  for (const src of srcArgs) {
    if (signal.aborted) throw new InterruptedError();
    const st = fs.lstatSync(src, { throwIfNoEntry: false });
    const dest = intoDir ? path.join(destArg, path.basename(path.resolve(src))) : destArg;
    const fail = (err: Error) => {
      outcome.failed++;
      rep.file({ source: src, dest, bytes: 0, blake3: null, ms: 0, outcome: 'failed', error: err.message });
    };
    if (!st) {
      fail(new PathError(`${src}: No such file or directory`));
      continue;
    }
    if (opts.exclude.excludes(path.basename(path.resolve(src)), st.isDirectory())) continue;
    if (path.resolve(dest) === path.resolve(src)) {
      fail(new PathError(`${src}: source and destination are the same`));
      continue;
    }
    if (st.isDirectory() && `${path.resolve(dest)}/`.startsWith(`${path.resolve(src)}/`)) {
      fail(new PathError(`${src}: cannot move a directory into itself (${dest})`));
      continue;
    }
    // -e applies inside trees too: an excluded entry must stay, which a rename cannot do.
    if (st.isDirectory() && !opts.exclude.empty) {
      across.push(src);
      continue;
    }
    const there = fs.lstatSync(dest, { throwIfNoEntry: false });
    if (there && !opts.force) {
      fail(new ExistsError(`${dest}: already exists (use -f to overwrite)`));
      continue;
    }
    if (there?.isDirectory() && !st.isDirectory()) {
      fail(new PathError(`${dest}: is a directory`));
      continue;
    }
    if (opts.dryRun) {
      rep.planned(`rename ${src} -> ${dest}`);
      outcome.files++;
      continue;
    }
    try {
      fs.renameSync(src, dest);
      outcome.files++;
      outcome.bytes += st.isFile() ? st.size : 0;
      rep.file({
        source: src,
        dest,
        bytes: st.isFile() ? st.size : 0,
        blake3: null,
        ms: Math.round(performance.now() - t0),
        outcome: 'ok',
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EXDEV') across.push(src);
      else fail(new PathError(`${src} -> ${dest}: ${(err as Error).message}`));
    }
  }
  if (across.length === 0) return outcome;
  // Another filesystem (or -e inside a tree): copied, verified, then removed.
  const dest = intoDir && !destArg.endsWith('/') ? `${destArg}/` : destArg;
  const copied = await runCopy(across, dest, copyOpts, rep, signal);
  return {
    files: outcome.files + copied.files,
    failed: outcome.failed + copied.failed,
    bytes: outcome.bytes + copied.bytes,
    dirs: outcome.dirs + copied.dirs,
  };
}
