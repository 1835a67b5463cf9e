/**
 * `bcmr check SRC DST`: compares without changing anything, as `bcmr sync` would see it (DST
 * against SRC's contents). Size and mtime first (tree_diff.ts), then BLAKE3 for same-size
 * files whose mtime differs (both hosts hash their own files, at once), or for all with -c.
 */
import type { RemoteOptions } from '../client/pool/open_remote.js';
import { type Endpoint, hostLabel, parseEndpoint } from '../core/endpoint.js';
import { settleByHash } from './mirror.js';
import type { PathFilter } from './path_filter.js';
import { Remotes } from './remotes.js';
import { type Failures, LocalSide, RemoteSide, type Side } from './sides.js';
import { diffTrees } from './tree_diff.js';
import type { WalkOptions } from './walk.js';

/** One difference `bcmr check` found: what a sync would do about it. */
export interface CheckDifference {
  /** `added`: only in SRC; `modified`: in both, different; `removed`: only in DST. */
  kind: 'added' | 'modified' | 'removed';
  /** Relative to SRC and DST (a directory only at DST ends in `/`). */
  path: string;
  size: number;
}

export interface CheckOptions extends RemoteOptions {
  exclude: PathFilter;
  deref: boolean;
  /** Hash every same-size file, not only those whose mtime differs. */
  checksum: boolean;
  /** Never hash: a same-size file with another mtime counts as modified. */
  noHash: boolean;
}

export interface CheckResult {
  differences: CheckDifference[];
  failures: { path: string; error: Error }[];
}

export async function runCheck(
  srcArg: string,
  destArg: string,
  opts: CheckOptions,
  notice: (msg: string) => void,
  signal: AbortSignal,
): Promise<CheckResult> {
  const src = parseEndpoint(srcArg);
  const dest = parseEndpoint(destArg);
  const remotes = new Remotes(opts, notice, signal);
  try {
    const from: Side =
      src.kind === 'remote' ? new RemoteSide(await remotes.connect(src)) : new LocalSide(false);
    const to: Side = await destSide(src, dest, from, remotes);
    const walk: WalkOptions = {
      recursive: true,
      deref: opts.deref,
      exclude: opts.exclude,
      onSkip: (abs, kind) => notice(`skipping ${abs}: ${kind}, not copied`),
    };
    const failures: Failures = [];
    const mine = await from.tree(src.path, walk, failures);
    if (!mine) return { differences: [], failures };
    const theirs = await to.tree(dest.path, { ...walk, onSkip: undefined }, []);
    const diff = diffTrees(mine, theirs, opts.checksum);
    if (!opts.noHash && theirs)
      failures.push(...(await settleByHash(from, to, mine.root, theirs.root, diff.files)));
    const differences: CheckDifference[] = [];
    for (const f of diff.files) {
      const name = f.rel || mine.name;
      if (f.kind === 'added') differences.push({ kind: 'added', path: name, size: f.size });
      else if (f.kind === 'changed') differences.push({ kind: 'modified', path: name, size: f.size });
      else if (f.kind === 'extra') differences.push({ kind: 'removed', path: f.rel, size: f.size });
    }
    for (const d of diff.extraDirs) differences.push({ kind: 'removed', path: `${d}/`, size: 0 });
    return { differences, failures };
  } finally {
    await remotes.closeAll();
  }
}

/** The destination's side: the source's own connection when both are on one host. */
async function destSide(src: Endpoint, dest: Endpoint, from: Side, remotes: Remotes): Promise<Side> {
  if (dest.kind !== 'remote') return new LocalSide(false);
  if (src.kind === 'remote' && hostLabel(src) === hostLabel(dest) && from.remote)
    return new RemoteSide(from.remote);
  return new RemoteSide(await remotes.connect(dest));
}
