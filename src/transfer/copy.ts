/**
 * One `bcmr copy` job: local -> local, local -> remote or remote -> local. Plans first (cp/scp
 * destination rules, excludes, conflicts), then moves files, then applies -p and -V. Every
 * file ends in exactly one `file` event; the outcome counts them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DEDUP_MIN_BYTES, prehashFile } from '../client/file_batch.js';
import { STRIPE_MIN_BYTES } from '../client/stripe.js';
import { fileHashHex } from '../codec/hash.js';
import { describeEndpoint, hostLabel, parseEndpoint, type RemoteEndpoint } from '../core/endpoint.js';
import type { FileResult, GetItem, Prehash, PutItem } from '../core/items.js';
import { absoluteRemote, type RemoteFs } from '../core/remote_fs.js';
import { WorkQueue } from '../core/work_queue.js';
import {
  ExistsError,
  IntegrityError,
  InterruptedError,
  PathError,
  RemoteError,
  UsageError,
} from '../errors.js';
import { shellQuote } from '../util/shell.js';
import { applyLocalAttrs, remoteAttrScript, remoteLinkScript } from './attrs.js';
import { copyLocalFiles } from './local_copy.js';
import { LocalTreeGuard } from './local_guard.js';
import { openRemote, type RemoteOptions } from './open_remote.js';
import {
  baseName,
  type CopyPlan,
  type DestInfo,
  isExcluded,
  planCopy,
  type SourceTree,
  safeRelative,
  type WalkOptions,
  walkLocal,
} from './plan.js';
import { publishOutcomes, publishScript } from './publish_script.js';

export interface CopyOptions extends RemoteOptions {
  recursive: boolean;
  preserve: boolean;
  force: boolean;
  dryRun: boolean;
  exclude: RegExp[];
  deref: boolean;
  verify: boolean;
  /** -C: downloads continue from a verified partial file and keep it on failure. */
  resume?: boolean;
  /** Asked (on a TTY) whether existing files may be replaced; absent: refuse. */
  confirmOverwrite?: (paths: string[]) => Promise<boolean>;
}

/** `interrupted`: stopped by Ctrl-C (the job's own line says so; no line per file). */
export type Outcome = 'ok' | 'failed' | 'interrupted';

export interface FileEvent {
  source: string;
  dest: string;
  bytes: number;
  blake3: string | null;
  ms: number;
  outcome: Outcome;
  error?: string;
  /** Bytes the server already had (dedup), not sent. */
  deduped?: number;
  /** Verified bytes of an earlier partial download that were kept (-C). */
  resumedFrom?: number;
}

export interface StartEvent {
  op: 'local' | 'upload' | 'download';
  via: 'local' | 'bcmr' | 'ssh';
  /** What carries the file data (`--direct`). */
  plane: 'local' | 'ssh' | 'direct';
  files: number;
  bytes: number;
  dirs: number;
  connections: number;
}

export interface CopyReporter {
  start(e: StartEvent): void;
  bytes(n: number): void;
  file(e: FileEvent): void;
  /** A message for stderr that is not a failure (e.g. falling back to plain ssh). */
  notice(msg: string): void;
  /** One line of a dry run's plan. */
  planned(line: string): void;
}

export interface CopyOutcome {
  files: number;
  failed: number;
  bytes: number;
  dirs: number;
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
  if (remoteSources.length > 0 && dest.kind === 'remote') {
    throw new UsageError('copying between two remote hosts is not supported; copy through a local directory');
  }
  if (remoteSources.length > 0 && remoteSources.length < sources.length) {
    throw new UsageError('sources must all be local or all on the same remote host');
  }
  const hosts = new Set(remoteSources.map((s) => `${hostLabel(s)}`));
  if (hosts.size > 1) throw new UsageError(`sources are on different hosts: ${[...hosts].join(', ')}`);
  if (opts.resume && remoteSources.length === 0 && dest.kind === 'local') {
    throw new UsageError('-C/--resume applies to copies to or from a remote host, not local copies');
  }
  const job = new Job(opts, rep, signal);
  if (dest.kind === 'remote')
    return job.upload(
      sources.map((s) => s.path),
      dest,
    );
  if (remoteSources.length > 0) return job.download(remoteSources, dest.path);
  return job.local(
    sources.map((s) => s.path),
    dest.path,
  );
}

class Job {
  private readonly outcome: CopyOutcome = { files: 0, failed: 0, bytes: 0, dirs: 0 };
  private remote: RemoteFs | null = null;

  constructor(
    private readonly opts: CopyOptions,
    private readonly rep: CopyReporter,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener('abort', () => void this.remote?.destroy(), { once: true });
  }

  async upload(srcPaths: string[], dest: RemoteEndpoint): Promise<CopyOutcome> {
    const prehash = this.prehashSources(srcPaths);
    const remote = await this.connect(dest);
    try {
      const destAbs = absoluteRemote(remote.home, dest.path);
      const info = await remoteDestInfo(remote, destAbs, dest.path === '' || dest.path.endsWith('/'));
      const failures: CopyPlan['failures'] = [];
      const trees = srcPaths
        .map((p) => walkLocal(p, this.walkOptions(), failures))
        .filter((t): t is SourceTree => t !== null)
        .filter((t) => t.isDir || !isExcluded(t.name, this.opts.exclude));
      const plan = planCopy(trees, info, srcPaths.length > 1);
      plan.failures.unshift(...failures);
      if (!this.opts.force && plan.files.length > 0) {
        await this.resolveConflicts(plan, await remoteExisting(remote, plan));
      }
      this.begin(plan, 'upload', remote, describeEndpoint(dest));
      if (this.opts.dryRun) return this.outcome;
      this.checkAbort();
      await remote.mkdirs(plan.dirs.map((d) => d.dest));
      this.outcome.dirs = plan.dirs.length;
      if (plan.links.length > 0) await remote.script(remoteLinkScript(plan.links, this.opts.force));
      const byDest = new Map(plan.files.map((f) => [f.dest, f]));
      const items: PutItem[] = largestFirst(plan.files).map((f) => ({
        local: f.src,
        remote: f.dest,
        size: f.size,
        overwrite: this.opts.force,
        resume: this.opts.resume,
        prehash: prehash.get(path.resolve(f.src)),
      }));
      const done: FileResult<PutItem>[] = [];
      await remote.upload(new WorkQueue(items), {
        onBytes: (n) => this.rep.bytes(n),
        onFileDone: (r) => (r.error ? this.report(r.item.local, r.item.remote, r) : done.push(r)),
      });
      this.checkAbort();
      await this.publishResumed(remote, done);
      if (this.opts.verify && done.length > 0) {
        const hashes = await remote.hashFiles(done.map((r) => r.item.remote));
        for (const [i, r] of done.entries()) verifyAgainst(r, hashes[i]);
      }
      if (this.opts.preserve) {
        const ok = done
          .filter((r) => !r.error)
          .map((r) => byDest.get(r.item.remote))
          .filter((f) => f !== undefined);
        const script = remoteAttrScript(ok, plan.dirs);
        if (script) await remote.script(script);
      }
      for (const r of done) this.report(r.item.local, r.item.remote, r);
      return this.outcome;
    } finally {
      await this.closeRemote();
    }
  }

  async download(srcs: RemoteEndpoint[], destPath: string): Promise<CopyOutcome> {
    const remote = await this.connect(srcs[0]);
    try {
      const failures: CopyPlan['failures'] = [];
      const trees: SourceTree[] = [];
      for (const s of srcs) {
        const tree = await this.remoteTree(remote, absoluteRemote(remote.home, s.path), failures);
        if (tree && (tree.isDir || !isExcluded(tree.name, this.opts.exclude))) trees.push(tree);
      }
      const info = localDestInfo(destPath);
      const plan = planCopy(trees, info, srcs.length > 1);
      plan.failures.unshift(...failures);
      if (!this.opts.force) await this.resolveConflicts(plan, localExisting(plan));
      this.begin(plan, 'download', remote, destPath);
      if (this.opts.dryRun) return this.outcome;
      const guard = new LocalTreeGuard(info);
      const items: GetItem[] = [];
      for (const d of plan.dirs) {
        // As on the upload side, a directory that cannot be made stops the job with one line.
        const err = guard.mkdir(d.dest);
        if (err) throw err;
      }
      this.outcome.dirs = plan.dirs.length;
      for (const f of largestFirst(plan.files)) {
        const err = guard.checkParent(f.dest);
        if (err) this.fail(f.src, f.dest, err);
        else
          items.push({
            remote: f.src,
            local: f.dest,
            size: f.size,
            overwrite: this.opts.force,
            resume: this.opts.resume,
          });
      }
      const done: FileResult<GetItem>[] = [];
      this.checkAbort();
      await remote.download(new WorkQueue(items), {
        onBytes: (n) => this.rep.bytes(n),
        onFileDone: (r) => (r.error ? this.report(r.item.remote, r.item.local, r) : done.push(r)),
      });
      this.checkAbort();
      if (this.opts.verify) {
        // Under --fast nothing was hashed in transit: the source's hash comes from the server now.
        const unhashed = done.filter((r) => r.hash === null);
        const sourceHashes =
          unhashed.length > 0 ? await remote.hashFiles(unhashed.map((r) => r.item.remote)) : [];
        for (const [i, r] of unhashed.entries()) {
          const h = sourceHashes[i];
          if (h instanceof Error) r.error = new IntegrityError(`verify failed: ${h.message}`);
          else r.hash = h;
        }
        for (const r of done)
          if (!r.error) verifyAgainst(r, await fileHashHex(r.item.local).catch((e: Error) => e));
      }
      if (this.opts.preserve) {
        const byDest = new Map(plan.files.map((f) => [f.dest, f]));
        const ok = done
          .filter((r) => !r.error)
          .map((r) => byDest.get(r.item.local))
          .filter((f) => f !== undefined);
        const modes = await remoteModes(
          remote,
          ok.map((f) => f.src),
        ).catch(() => null);
        ok.forEach((f, i) => {
          f.mode = modes?.[i] ?? null;
        });
        applyLocalAttrs(ok, plan.dirs);
      }
      for (const r of done) this.report(r.item.remote, r.item.local, r);
      return this.outcome;
    } finally {
      await this.closeRemote();
    }
  }

  async local(srcPaths: string[], destPath: string): Promise<CopyOutcome> {
    const failures: CopyPlan['failures'] = [];
    const trees = srcPaths
      .map((p) => walkLocal(p, this.walkOptions(), failures))
      .filter((t): t is SourceTree => t !== null)
      .filter((t) => t.isDir || !isExcluded(t.name, this.opts.exclude));
    const info = localDestInfo(destPath);
    const plan = planCopy(trees, info, srcPaths.length > 1);
    plan.failures.unshift(...failures);
    if (!this.opts.force) await this.resolveConflicts(plan, localExisting(plan));
    this.begin(plan, 'local', null, destPath);
    if (this.opts.dryRun) return this.outcome;
    for (const d of plan.dirs) {
      try {
        fs.mkdirSync(d.dest, { recursive: true });
      } catch (err) {
        this.fail('', d.dest, err as Error);
      }
    }
    this.outcome.dirs = plan.dirs.length;
    for (const l of plan.links) {
      try {
        if (this.opts.force) fs.rmSync(l.dest, { force: true });
        fs.symlinkSync(l.target, l.dest);
      } catch (err) {
        this.fail('', l.dest, err as Error);
      }
    }
    const results = await copyLocalFiles(
      plan.files,
      { overwrite: this.opts.force, verify: this.opts.verify, sync: this.opts.sync, signal: this.signal },
      (n) => this.rep.bytes(n),
    );
    this.checkAbort();
    if (this.opts.preserve)
      applyLocalAttrs(
        plan.files.filter((_, i) => !results[i].error),
        plan.dirs,
      );
    for (const [i, r] of results.entries()) this.report(plan.files[i].src, plan.files[i].dest, r);
    return this.outcome;
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
  private async publishResumed(remote: RemoteFs, done: FileResult<PutItem>[]): Promise<void> {
    const parts = done.filter((r) => r.publishFrom);
    if (parts.length === 0) return;
    const script = publishScript(
      parts.map((r) => ({ from: r.publishFrom ?? '', to: r.item.remote })),
      this.opts.force,
    );
    let outcomes: (string | null)[];
    try {
      outcomes = publishOutcomes(await remote.script(script), parts.length);
    } catch (err) {
      outcomes = parts.map(() => (err as Error).message);
    }
    for (const [i, r] of parts.entries()) {
      const why = outcomes[i];
      if (why !== null)
        r.error = new PathError(`${r.item.remote}: could not rename the verified temp file: ${why}`);
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
      if (!st.isFile() || st.size < DEDUP_MIN_BYTES) continue;
      if (this.opts.parallel > 1 && st.size >= STRIPE_MIN_BYTES) continue;
      out.set(path.resolve(p), prehashFile(p));
    }
    return out;
  }

  private async connect(target: RemoteEndpoint): Promise<RemoteFs> {
    this.remote = await openRemote(target, this.opts, (msg) => this.rep.notice(msg));
    if (this.signal.aborted) {
      await this.remote.destroy();
      throw new InterruptedError();
    }
    return this.remote;
  }

  private async closeRemote(): Promise<void> {
    if (this.signal.aborted) await this.remote?.destroy();
    else await this.remote?.close();
  }

  private async remoteTree(
    remote: RemoteFs,
    abs: string,
    failures: CopyPlan['failures'],
  ): Promise<SourceTree | null> {
    const st = await remote.stat(abs);
    if (!st) {
      failures.push({ path: abs, error: new PathError(`${abs}: No such file or directory`) });
      return null;
    }
    const name = baseName(abs);
    if (!st.isDir)
      return {
        root: abs,
        name,
        isDir: false,
        entries: [{ rel: '', kind: 'file', size: st.size, mtime: st.mtime, mode: null }],
      };
    if (!this.opts.recursive) {
      failures.push({ path: abs, error: new PathError(`${abs}: is a directory (use -r to copy trees)`) });
      return null;
    }
    const listed = await remote.list(abs);
    const tree: SourceTree = {
      root: abs,
      name,
      isDir: true,
      entries: [{ rel: '', kind: 'dir', size: 0, mtime: st.mtime, mode: null }],
    };
    const excludedDirs: string[] = [];
    for (const e of listed) {
      if (!safeRelative(e.path)) {
        failures.push({
          path: e.path,
          error: new PathError(`refused unsafe name from the server: ${JSON.stringify(e.path)}`),
        });
        continue;
      }
      if (isExcluded(e.path, this.opts.exclude) || excludedDirs.some((d) => e.path.startsWith(d))) {
        if (e.isDir) excludedDirs.push(`${e.path}/`);
        continue;
      }
      tree.entries.push({
        rel: e.path,
        kind: e.isDir ? 'dir' : 'file',
        size: e.size,
        mtime: e.mtime,
        mode: null,
      });
    }
    return tree;
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

  /** `remote` is null for a local copy. */
  private begin(plan: CopyPlan, op: StartEvent['op'], remote: RemoteFs | null, destLabel: string): void {
    for (const f of plan.failures) this.fail(f.path, '', f.error);
    const via = remote?.via ?? 'local';
    this.rep.start({
      op,
      via,
      plane: remote?.plane ?? 'local',
      files: plan.files.length,
      bytes: plan.bytes,
      dirs: plan.dirs.length,
      connections: via === 'bcmr' ? this.opts.parallel : 1,
    });
    if (this.opts.dryRun) {
      for (const d of plan.dirs) this.rep.planned(`mkdir ${d.dest}`);
      for (const l of plan.links) this.rep.planned(`link ${l.dest} -> ${l.target}`);
      for (const f of plan.files) this.rep.planned(`copy ${f.src} -> ${f.dest} (${f.size} B)`);
      this.rep.planned(`would copy ${plan.files.length} file(s), ${plan.bytes} B, to ${destLabel}`);
      this.outcome.files = plan.files.length;
      this.outcome.bytes = plan.bytes;
      this.outcome.dirs = plan.dirs.length;
    }
  }

  private report(source: string, dest: string, r: FileResult<unknown>): void {
    // A remote FIFO, socket or device (listed like a file) that the server refused to read:
    // skipped and said, as the local walk does, not a failure of the copy.
    if (r.error instanceof RemoteError && /^io: not a regular file/.test(r.error.message)) {
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

async function remoteDestInfo(remote: RemoteFs, abs: string, mustBeDir: boolean): Promise<DestInfo> {
  const st = await remote.stat(abs);
  if (st) return { path: abs, isDir: st.isDir, mustBeDir, parentExists: true };
  const parent = await remote.stat(path.posix.dirname(abs));
  return { path: abs, isDir: null, mustBeDir, parentExists: parent?.isDir === true };
}

function localDestInfo(p: string): DestInfo {
  const mustBeDir = p.endsWith('/');
  try {
    return { path: p, isDir: fs.statSync(p).isDirectory(), mustBeDir, parentExists: true };
  } catch {
    const parent = path.dirname(path.resolve(p));
    let parentExists = false;
    try {
      parentExists = fs.statSync(parent).isDirectory();
    } catch {}
    return { path: p, isDir: null, mustBeDir, parentExists };
  }
}

function localExisting(plan: CopyPlan): Set<string> {
  const s = new Set<string>();
  for (const f of plan.files) {
    try {
      fs.lstatSync(f.dest);
      s.add(f.dest);
    } catch {}
  }
  return s;
}

/** Files of the plan that exist on the remote: one Stat or List per copied root. */
async function remoteExisting(remote: RemoteFs, plan: CopyPlan): Promise<Set<string>> {
  const s = new Set<string>();
  const roots = new Set<string>();
  for (const d of plan.dirs) if (!plan.dirs.some((p) => d.dest.startsWith(`${p.dest}/`))) roots.add(d.dest);
  for (const root of roots) {
    const st = await remote.stat(root);
    if (st?.isDir) for (const e of await remote.list(root)) s.add(path.posix.join(root, e.path));
  }
  const loose = plan.files.filter((f) => ![...roots].some((r) => f.dest.startsWith(`${r}/`)));
  for (const f of loose) if (await remote.stat(f.dest)) s.add(f.dest);
  return s;
}

/** Permission bits of remote files, in order (for -p downloads; the protocol has no mode). */
async function remoteModes(remote: RemoteFs, paths: string[]): Promise<(number | null)[]> {
  if (paths.length === 0) return [];
  // printf is a shell builtin, so the list is not bound by the kernel's argument limit.
  const out = (
    await remote.script(`printf '%s\\0' ${paths.map(shellQuote).join(' ')} | xargs -0 stat -c %a --\n`)
  )
    .trim()
    .split('\n');
  return paths.map((_, i) => (out[i] ? Number.parseInt(out[i], 8) : null));
}
