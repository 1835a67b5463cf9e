/**
 * One `bcmr copy` job: local -> local, local -> remote, remote -> local or remote -> remote,
 * all through one pipeline (Job.run) over two `Side`s. Plans first (cp/scp destination rules,
 * excludes, conflicts), then moves files, then applies -V and -p. Every file ends in exactly
 * one `file` event; the outcome counts them. `bcmr sync` is this job with what mirror.ts adds
 * (only what differs, --delete); `bcmr move` is it with the sources removed after.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { RemoteOptions } from '../client/pool/open_remote.js';
import { prehashFile } from '../client/serve/dedup.js';
import { dedups, stripes } from '../client/serve/policy.js';
import { publishOutcomes, publishScript } from '../client/shell/publish_script.js';
import {
  describeEndpoint,
  type Endpoint,
  hostLabel,
  parseEndpoint,
  type RemoteEndpoint,
} from '../core/endpoint.js';
import type { FileResult, GetItem, Prehash, PutItem } from '../core/items.js';
import type { PathChoice, RemoteFs, WorkFacts } from '../core/remote_fs.js';
import { WorkQueue } from '../core/work_queue.js';
import {
  ExistsError,
  IntegrityError,
  InterruptedError,
  PathError,
  RemoteError,
  UsageError,
} from '../errors.js';
import { trace } from '../util/trace.js';
import type { CopyOutcome, CopyReporter, StartEvent } from './events.js';
import { copyLocalFiles } from './local_copy.js';
import { deleteExtras, type Extras, type MirrorOptions, mirrorDestInfo, mirrorPlan } from './mirror.js';
import type { PathFilter } from './path_filter.js';
import { type CopyPlan, isExcluded, type PlannedFile, planCopy, type SourceTree, under } from './plan.js';
import { relayFiles } from './relay.js';
import { Remotes } from './remotes.js';
import { type Failures, LocalSide, RemoteSide, type Side } from './sides.js';
import type { WalkOptions } from './walk.js';

export interface CopyOptions extends RemoteOptions {
  recursive: boolean;
  preserve: boolean;
  force: boolean;
  dryRun: boolean;
  exclude: PathFilter;
  deref: boolean;
  verify: boolean;
  /** -C: downloads continue from a verified partial file and keep it on failure. */
  resume?: boolean;
  /** Asked (on a TTY) whether existing files may be replaced; absent: refuse. */
  confirmOverwrite?: (paths: string[]) => Promise<boolean>;
  /**
   * `bcmr sync`: DST becomes a copy of SRC's contents (no trailing-slash rules), moving only
   * the files whose size or mtime differ (or BLAKE3, with `checksum`); with `delete`, what DST
   * has and SRC lacks is removed after a transfer without errors.
   */
  mirror?: MirrorOptions;
  /**
   * `bcmr move`: after the copy, -V and -p, the source of each file whose copy is verified is
   * removed, then the source directories left empty; a failed or skipped file's stays.
   */
  removeSources?: boolean;
}

export async function runCopy(
  srcArgs: readonly string[],
  destArg: string,
  opts: CopyOptions,
  rep: CopyReporter,
  signal: AbortSignal,
): Promise<CopyOutcome> {
  if (srcArgs.length === 0)
    throw new UsageError('missing destination or source (usage: bcmr copy SRC... DST)');
  const sources = srcArgs.map(parseEndpoint);
  const dest = parseEndpoint(destArg);
  const remoteSources = sources.filter((s): s is RemoteEndpoint => s.kind === 'remote');
  if (remoteSources.length > 0 && remoteSources.length < sources.length) {
    throw new UsageError('sources must all be local or all on the same remote host');
  }
  const hosts = new Set(remoteSources.map((s) => `${hostLabel(s)}`));
  if (hosts.size > 1) throw new UsageError(`sources are on different hosts: ${[...hosts].join(', ')}`);
  if (opts.resume && remoteSources.length === 0 && dest.kind === 'local') {
    throw new UsageError('-C/--resume applies to copies to or from a remote host, not local copies');
  }
  return new Job(opts, rep, signal).run(sources, dest);
}

/** One file moved (or not): where from, where to, and how it went. */
interface Moved {
  src: string;
  dest: string;
  r: FileResult<unknown>;
}

class Job {
  private readonly outcome: CopyOutcome = { files: 0, failed: 0, bytes: 0, dirs: 0 };
  private readonly remotes: Remotes;
  /** sync: destination files that exist and differ, by path, with their size (sent as deltas). */
  private readonly deltas = new Map<string, number>();
  /** Hashing ahead of large single files (prehashSources), each with its size. */
  private readonly prehashStops: { size: number; stop: AbortController; done: boolean }[] = [];

  constructor(
    private readonly opts: CopyOptions,
    private readonly rep: CopyReporter,
    private readonly signal: AbortSignal,
  ) {
    this.remotes = new Remotes(opts, (msg) => rep.notice(msg), signal);
  }

  /**
   * The one pipeline, whatever the sides: walk or list the sources, plan by cp rules, settle
   * conflicts, report the start (or the dry run), make directories and links, move the bytes,
   * publish resumed and striped uploads, verify (-V), preserve (-p), report every file.
   */
  async run(sources: Endpoint[], dest: Endpoint): Promise<CopyOutcome> {
    const srcRemote = sources[0].kind === 'remote' ? sources[0] : null;
    // A single large local file going through dedup: its block hashes are computed while ssh
    // connects (see prehashSources).
    const prehash =
      !srcRemote && dest.kind === 'remote' ? this.prehashSources(sources.map((s) => s.path)) : new Map();
    try {
      const from: Side = srcRemote
        ? new RemoteSide(await this.remotes.connect(srcRemote))
        : new LocalSide(false);
      const failures: Failures = [];
      const trees: SourceTree[] = [];
      const walkSources = async () => {
        for (const s of sources) {
          const tree = await from.tree(s.path, this.walkOptions(), failures);
          if (tree && (tree.isDir || !isExcluded(tree.name, this.opts.exclude, false))) trees.push(tree);
        }
      };
      // Local sources are walked while ssh to the destination connects (started before this
      // code loaded): the walk's CPU and the handshake's wait overlap.
      if (!srcRemote) await walkSources();
      trace('sources walked');
      const to: Side =
        dest.kind === 'remote'
          ? new RemoteSide(await this.remotes.connect(dest))
          : new LocalSide(srcRemote !== null);
      trace('destination connected');
      // sync: the destination is listed while a remote source is listed.
      const mirrorListing =
        this.opts.mirror && sources.length === 1
          ? to.tree(dest.path, { ...this.walkOptions(), recursive: true, onSkip: undefined }, [])
          : null;
      mirrorListing?.catch(() => {});
      if (srcRemote) await walkSources();
      const mirror = this.opts.mirror;
      const info = mirror
        ? await mirrorDestInfo(to, dest.path, this.opts.dryRun)
        : await to.destInfo(dest.path, dest.path === '' || dest.path.endsWith('/'));
      const plan = planCopy(trees, info, sources.length > 1);
      trace('planned');
      plan.failures.unshift(...failures);
      let extras: Extras | null = null;
      if (mirror && trees.length === 1 && mirrorListing) {
        const listed = await mirrorListing;
        trace('destination listed');
        extras = await mirrorPlan(
          plan,
          trees[0],
          listed,
          { from, to, destRoot: info.path },
          mirror,
          this.deltas,
        );
      } else if (!this.opts.force && plan.files.length > 0)
        await this.resolveConflicts(plan, await to.existing(plan));
      trace('compared with the destination');
      // Nothing to move (an unchanged sync): no round trip to measure, no connection to open.
      const chosen =
        this.opts.dryRun || plan.files.length === 0 ? null : await this.choosePaths(plan, from, to);
      this.stopUnusedPrehash(to.remote?.connectionCount ?? 1);
      this.begin(plan, from, to, dest.kind === 'remote' ? describeEndpoint(dest) : dest.path, chosen, extras);
      if (this.opts.dryRun) return this.outcome;
      this.checkAbort();
      await to.makeDirs(plan, info);
      this.outcome.dirs = plan.dirs.length;
      await to.makeLinks(plan, this.opts.force, (d, err) => this.fail('', d, err));
      const files: PlannedFile[] = [];
      for (const f of largestFirst(plan.files)) {
        const err = to.checkTarget(f.dest);
        if (err) this.fail(f.src, f.dest, err);
        else files.push(f);
      }
      const done = await this.move(from, to, files, prehash);
      trace('moved');
      this.checkAbort();
      if (to.remote) await this.publishTemps(to.remote, done);
      trace('published');
      if (this.opts.verify && !(from instanceof LocalSide && to instanceof LocalSide))
        await this.verify(from, to, done);
      // Before -p: deleting inside a directory changes its mtime, which -p then sets.
      if (mirror?.delete && extras)
        await deleteExtras(
          to,
          extras,
          mirror.maxDelete,
          this.outcome.failed + done.filter((m) => m.r.error).length,
          {
            notice: (msg) => this.rep.notice(msg),
            fail: (p, err) => this.fail('', p, err),
            deleted: (p) => this.rep.deleted?.(p),
          },
        );
      if (this.opts.preserve) await this.preserve(from, to, done, plan);
      trace('preserved');
      if (this.opts.removeSources) await this.removeSources(from, done, trees);
      for (const m of done) this.report(m.src, m.dest, m.r);
      return this.outcome;
    } finally {
      await this.remotes.closeAll();
      trace('closed');
    }
  }

  /**
   * Moves the planned files: the only step that depends on which sides are local. Failed
   * files are reported at once; the rest come back for publishing, -V and -p.
   */
  private async move(
    from: Side,
    to: Side,
    files: PlannedFile[],
    prehash: Map<string, Promise<Prehash | null>>,
  ): Promise<Moved[]> {
    const done: Moved[] = [];
    const keep = (src: string, dest: string, r: FileResult<unknown>) =>
      r.error ? this.report(src, dest, r) : done.push({ src, dest, r });
    // A file whose bytes are all there counts in the progress as it comes (local copies count
    // through their own callback: their results come back together at the end).
    const settle = (src: string, dest: string, r: FileResult<unknown>) => {
      keep(src, dest, r);
      if (!r.error) this.rep.transferred?.();
    };
    const onBytes = (n: number, _item: unknown, lane?: number) => this.rep.bytes(n, lane);
    if (!from.remote && !to.remote) {
      const results = await copyLocalFiles(
        files,
        { overwrite: this.opts.force, verify: this.opts.verify, sync: this.opts.sync, signal: this.signal },
        { onBytes, onFileDone: (r) => !r.error && this.rep.transferred?.() },
      );
      for (const [i, r] of results.entries()) keep(files[i].src, files[i].dest, r);
    } else if (!from.remote && to.remote) {
      await to.remote.upload(new WorkQueue(files.map((f) => this.putItem(f.src, f, prehash))), {
        onBytes,
        onFileDone: (r) => settle(r.item.local, r.item.remote, r),
      });
    } else if (from.remote && !to.remote) {
      await from.remote.download(new WorkQueue(files.map((f) => this.getItem(f, f.dest))), {
        onBytes,
        onFileDone: (r) => settle(r.item.remote, r.item.local, r),
      });
    } else if (from.remote && to.remote) {
      await this.relay(from.remote, to.remote, files, settle);
    }
    return done;
  }

  private putItem(local: string, f: PlannedFile, prehash?: Map<string, Promise<Prehash | null>>): PutItem {
    return {
      local,
      remote: f.dest,
      size: f.size,
      overwrite: this.opts.force,
      resume: this.opts.resume,
      prehash: prehash?.get(path.resolve(f.src)),
      ...(this.deltas.has(f.dest) ? { delta: { oldSize: this.deltas.get(f.dest) ?? 0 } } : {}),
    };
  }

  private getItem(f: PlannedFile, local: string): GetItem {
    const oldSize = local === f.dest ? this.deltas.get(f.dest) : undefined;
    return {
      remote: f.src,
      local,
      size: f.size,
      overwrite: this.opts.force,
      resume: this.opts.resume,
      ...(oldSize !== undefined ? { delta: { oldSize } } : {}),
    };
  }

  /** Remote -> remote: relay.ts, with this job's items, progress and reports. */
  private relay(
    src: RemoteFs,
    dst: RemoteFs,
    files: PlannedFile[],
    settle: (src: string, dest: string, r: FileResult<unknown>) => void,
  ): Promise<void> {
    return relayFiles(src, dst, files, {
      getItem: (f, local) => this.getItem(f, local),
      putItem: (local, f) => this.putItem(local, f),
      onBytes: (n) => this.rep.bytes(n),
      settle,
      signal: this.signal,
    });
  }

  /**
   * -V: each destination file as stored must hash to what its source holds: the hash computed
   * in transit when there is one, otherwise (--fast downloads) the source side's hash now.
   */
  private async verify(from: Side, to: Side, done: Moved[]): Promise<void> {
    const unhashed = done.filter((m) => m.r.hash === null);
    const sourceHashes = unhashed.length > 0 ? await from.hashes(unhashed.map((m) => m.src)) : [];
    for (const [i, m] of unhashed.entries()) {
      const h = sourceHashes[i];
      if (h instanceof Error) m.r.error = new IntegrityError(`verify failed: ${h.message}`);
      else m.r.hash = h;
    }
    const ok = done.filter((m) => !m.r.error);
    const stored = await to.hashes(ok.map((m) => m.dest));
    for (const [i, m] of ok.entries()) verifyAgainst(m.r, stored[i]);
  }

  /**
   * -p: the sources' modes and times onto the destination files and directories. What cannot
   * be kept fails that file (its data is there, as cp -p reports it) or that directory; a
   * step that fails as a whole fails every file it was for, and none goes unreported.
   */
  private async preserve(from: Side, to: Side, done: Moved[], plan: CopyPlan): Promise<void> {
    const byDest = new Map(plan.files.map((f) => [f.dest, f]));
    const ok = done.flatMap((m) => {
      const f = m.r.error ? undefined : byDest.get(m.dest);
      return f ? [{ m, f }] : [];
    });
    const keepFailed = (m: Moved, why: Error) => {
      m.r.error = new PathError(`${m.dest}: copied, but -p could not keep its mode and time: ${why.message}`);
    };
    try {
      const modes = await from.modes(ok.map((x) => x.f));
      const failed = await to.applyAttrs(
        ok.map(({ f }, i) => {
          const mode = modes[i];
          return { dest: f.dest, mtime: f.mtime, mode: mode instanceof Error ? null : mode };
        }),
        plan.dirs,
      );
      for (const [i, { m }] of ok.entries()) {
        const why = modes[i] instanceof Error ? (modes[i] as Error) : failed[i];
        if (why) keepFailed(m, why);
      }
      for (const [i, d] of plan.dirs.entries()) {
        const why = failed[ok.length + i];
        if (why)
          this.fail(
            '',
            d.dest,
            new PathError(`${d.dest}: -p could not keep its mode and time: ${why.message}`),
          );
      }
    } catch (err) {
      for (const { m } of ok) keepFailed(m, err as Error);
    }
  }

  /**
   * move: removes the source of every file copied and verified (none other), then the source
   * directories deepest first; one still holding a file that failed, was skipped or excluded
   * stays. A source that cannot be removed fails its file: it is now in both places.
   */
  private async removeSources(from: Side, done: Moved[], trees: readonly SourceTree[]): Promise<void> {
    const moved = done.filter((m) => !m.r.error);
    const dirs = trees.flatMap((t) =>
      t.isDir
        ? t.entries
            .filter((e) => e.kind === 'dir')
            .map((e) => under(t.root, e.rel))
            .reverse()
        : [],
    );
    const failed = await from.remove(
      moved.map((m) => m.src),
      dirs,
    );
    for (const [i, m] of moved.entries()) {
      const why = failed[i];
      if (why)
        m.r.error = new PathError(
          `${m.dest}: copied, but its source ${m.src} could not be removed: ${why.message}`,
        );
    }
  }

  /** The walk's options: the copy's own, and special files said once each as skipped. */
  private walkOptions(): WalkOptions {
    return { ...this.opts, onSkip: (abs, kind) => this.rep.notice(`skipping ${abs}: ${kind}, not copied`) };
  }

  /**
   * Resumed and striped uploads sit verified in their temp files: one remote script renames
   * them all and says per file whether it did (see publish_script.ts). A file whose line is not
   * `ok` failed; its temp file stays for another -C run.
   */
  private async publishTemps(remote: RemoteFs, done: Moved[]): Promise<void> {
    const parts = done.filter((m) => m.r.publishFrom);
    if (parts.length === 0) return;
    const script = publishScript(
      parts.map((m) => ({ from: m.r.publishFrom ?? '', to: m.dest })),
      this.opts.force,
    );
    let outcomes: (string | null)[];
    try {
      outcomes = publishOutcomes(await remote.script(script), parts.length);
    } catch (err) {
      outcomes = parts.map(() => (err as Error).message);
    }
    for (const [i, m] of parts.entries()) {
      const why = outcomes[i];
      if (why !== null)
        m.r.error = new PathError(`${m.dest}: could not rename the verified temp file: ${why}`);
    }
  }

  /**
   * A single large file named on the command line is going through dedup (PROTOCOL.md 9),
   * which needs its block hashes before the first byte: they are computed while ssh connects,
   * when the client would otherwise only wait. Not for -C, nor for files that -P N stripes.
   */
  private prehashSources(srcPaths: readonly string[]): Map<string, Promise<Prehash | null>> {
    const out = new Map<string, Promise<Prehash | null>>();
    if (this.opts.resume) return out;
    for (const p of srcPaths) {
      let st: fs.Stats;
      try {
        st = this.opts.deref ? fs.statSync(p) : fs.lstatSync(p);
      } catch {
        continue;
      }
      // Whether the server offers dedup is not known yet: hashing ahead is a guess that costs
      // nothing when wrong (ssh is still connecting).
      const connections = this.opts.parallel === 'auto' ? 1 : this.opts.parallel;
      if (!st.isFile() || !dedups(st.size, { offered: true, connections })) continue;
      const entry = { size: st.size, stop: new AbortController(), done: false };
      this.prehashStops.push(entry);
      const hashing = prehashFile(p, entry.stop.signal);
      void hashing.finally(() => {
        entry.done = true;
      });
      out.set(path.resolve(p), hashing);
    }
    return out;
  }

  /**
   * -P auto chose several connections: a file they stripe never goes through dedup, so its
   * hashing ahead stops here rather than read the whole file for nothing beside the transfer.
   */
  private stopUnusedPrehash(connections: number): void {
    for (const { size, stop, done } of this.prehashStops)
      if (stripes(size, connections, this.opts.resume)) {
        stop.abort();
        trace(
          done
            ? 'prehash unused (done already): the file is striped'
            : 'prehash stopped: the file is striped',
        );
      }
  }

  /** Without -f: ask on a TTY, otherwise refuse the whole job and list what would be replaced. */
  private async resolveConflicts(plan: CopyPlan, existing: Set<string>): Promise<void> {
    const clash = plan.files.filter((f) => existing.has(f.dest)).map((f) => f.dest);
    if (clash.length === 0 || this.opts.dryRun) return;
    if (this.opts.confirmOverwrite && (await this.opts.confirmOverwrite(clash))) {
      this.opts.force = true;
      return;
    }
    const shown = clash.slice(0, 20).join('\n  ');
    const more = clash.length > 20 ? `\n  ... and ${clash.length - 20} more` : '';
    throw new ExistsError(`${clash.length} file(s) already exist (use -f to overwrite):\n  ${shown}${more}`);
  }

  /**
   * -P auto / --direct auto: each remote measures its path and opens what the work can use
   * (ServePool.prepare). Returns the destination's choice (the source's for a download).
   */
  private async choosePaths(plan: CopyPlan, from: Side, to: Side): Promise<PathChoice | null> {
    // A sync's delta sends what changed, not the file: counted as its growth and 1/64 of it,
    // so a big file with a few edits does not start the connections and the direct plane a
    // whole-file copy of it would use (each costs a handshake and a server start).
    const onWire = (f: PlannedFile) => {
      const old = this.deltas.get(f.dest);
      return old === undefined ? f.size : Math.max(0, f.size - old) + Math.ceil(f.size / 64);
    };
    const work: WorkFacts = {
      bytes: plan.files.reduce((n, f) => n + onWire(f), 0),
      files: plan.files.length,
      largest: plan.files.reduce((m, f) => Math.max(m, onWire(f)), 0),
    };
    // A relay's two hosts are measured at once: their round trips do not depend on each other.
    const [src, dst] = await Promise.all([from.remote?.prepare?.(work), to.remote?.prepare?.(work)]);
    return dst ?? src ?? null;
  }

  private begin(
    plan: CopyPlan,
    from: Side,
    to: Side,
    destLabel: string,
    chosen: PathChoice | null,
    extras: Extras | null,
  ): void {
    for (const f of plan.failures) this.fail(f.path, '', f.error);
    const remote = to.remote ?? from.remote;
    const op: StartEvent['op'] =
      from.remote && to.remote ? 'relay' : to.remote ? 'upload' : from.remote ? 'download' : 'local';
    const via = remote?.via ?? 'local';
    this.rep.start({
      op,
      via,
      plane: remote?.plane ?? 'local',
      ...(remote?.directUnavailable ? { directUnavailable: remote.directUnavailable } : {}),
      ...(remote ? { server: remote.server } : {}),
      ...(remote?.remoteNode ? { remoteNode: remote.remoteNode } : {}),
      ...(remote?.shellTools ? { shell: remote.shellTools } : {}),
      ...(op === 'relay' ? { relay: true, sourceVia: from.remote?.via } : {}),
      files: plan.files.length,
      bytes: plan.bytes,
      dirs: plan.dirs.length,
      connections: remote?.connectionCount ?? 1,
      ...(chosen ? { path: { rttMs: Math.round(chosen.rttMs * 100) / 100, why: chosen.why } } : {}),
    });
    if (this.opts.dryRun && extras) {
      for (const line of extras.lines) this.rep.planned(line);
      const deletes = this.opts.mirror?.delete ? extras.files.length + extras.dirs.length : 0;
      this.rep.planned(
        `would send ${plan.files.length} file(s), ${plan.bytes} B, and delete ${deletes}, to make ${destLabel} a copy`,
      );
      this.outcome.files = plan.files.length;
      this.outcome.bytes = plan.bytes;
    } else if (this.opts.dryRun) {
      for (const d of plan.dirs) this.rep.planned(`mkdir ${d.dest}`);
      for (const l of plan.links) this.rep.planned(`link ${l.dest} -> ${l.target}`);
      for (const f of plan.files) this.rep.planned(`copy ${f.src} -> ${f.dest} (${f.size} B)`);
      this.rep.planned(`would copy ${plan.files.length} file(s), ${plan.bytes} B, to ${destLabel}`);
      if (this.opts.removeSources) this.rep.planned(`and then remove each source once its copy is verified`);
      this.outcome.files = plan.files.length;
      this.outcome.bytes = plan.bytes;
      this.outcome.dirs = plan.dirs.length;
    }
  }

  private report(source: string, dest: string, r: FileResult<unknown>): void {
    // A remote FIFO, socket or device (listed like a file) that the server refused to read:
    // skipped and said, as the local walk does, not a failure of the copy. Only the source's:
    // a destination that is not a regular file (a directory there) fails the file.
    if (
      r.error instanceof RemoteError &&
      r.error.message.startsWith(`io: not a regular file: ${source.slice(0, 512)}`)
    ) {
      this.rep.notice(`skipping ${source}: not a regular file, not copied`);
      return;
    }
    if (r.error) {
      this.fail(source, dest, r.error, r.ms, r.bytes);
      return;
    }
    this.outcome.files++;
    this.outcome.bytes += r.bytes;
    this.rep.file({
      source,
      dest,
      bytes: r.bytes,
      blake3: r.hash,
      ms: Math.round(r.ms),
      outcome: 'ok',
      ...(r.deduped ? { deduped: r.deduped } : {}),
      ...(r.resumedFrom ? { resumedFrom: r.resumedFrom } : {}),
      ...(r.kept ? { kept: r.kept } : {}),
    });
  }

  private fail(source: string, dest: string, err: Error, ms = 0, bytes = 0): void {
    this.outcome.failed++;
    const msg = err.message.split('\n')[0];
    const where = dest || source;
    this.rep.file({
      source,
      dest,
      bytes,
      blake3: null,
      ms: Math.round(ms),
      outcome: this.signal.aborted ? 'interrupted' : 'failed',
      error: where && !msg.includes(where) ? `${where}: ${msg}` : msg,
    });
  }

  private checkAbort(): void {
    if (this.signal.aborted) throw new InterruptedError();
  }
}

function largestFirst<T extends { size: number }>(files: readonly T[]): T[] {
  return [...files].sort((a, b) => b.size - a.size);
}

/** -V: the destination as stored must hash to what was sent. */
function verifyAgainst(r: FileResult<unknown>, stored: string | Error): void {
  if (stored instanceof Error) r.error = new IntegrityError(`verify failed: ${stored.message}`);
  else if (r.hash !== null && stored !== r.hash)
    r.error = new IntegrityError(`verify failed: stored copy hashes to ${stored}, sent ${r.hash}`);
  else r.hash = stored;
}
