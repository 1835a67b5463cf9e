/**
 * The two ends of a copy, behind one interface: a local directory tree, or a remote host
 * reached through a `RemoteFs` (bcmr serve or the plain-ssh fallback). The pipeline in copy.ts
 * walks, plans, checks conflicts, makes directories and links, verifies and preserves through
 * this interface only; which side is which decides nothing but how bytes move (see copy.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  type Attrs,
  entryFailures,
  remoteAttrScript,
  remoteLinkScript,
} from '../client/shell/attrs_script.js';
import {
  type Removal,
  removeFilesScript,
  removeOutcomes,
  removeScript,
} from '../client/shell/remove_script.js';
import { fileHashHex } from '../codec/hash.js';
import { absoluteRemote, type RemoteFs } from '../core/remote_fs.js';
import { PathError, RemoteError } from '../errors.js';
import { sh } from '../util/shell.js';
import { applyLocalAttrs } from './local_attrs.js';
import { LocalTreeGuard } from './local_guard.js';
import { removeLocal, statLocal } from './local_remove.js';
import {
  baseName,
  type CopyPlan,
  type DestInfo,
  isExcluded,
  type PlannedFile,
  type SourceTree,
  safeRelative,
} from './plan.js';
import { type WalkOptions, walkLocal } from './walk.js';

export type Failures = CopyPlan['failures'];

export interface Side {
  /** The connection, for a remote side. */
  readonly remote: RemoteFs | null;
  /** A path as typed, made absolute the way this side names things. */
  resolve(p: string): string;
  /** One source as a tree (walked or listed), or null with the reason in `failures`. */
  tree(p: string, opts: WalkOptions, failures: Failures): Promise<SourceTree | null>;
  destInfo(p: string, mustBeDir: boolean): Promise<DestInfo>;
  /** Planned destination files that exist already. */
  existing(plan: CopyPlan): Promise<Set<string>>;
  /** Creates the plan's directories; a directory that cannot be made stops the job. */
  makeDirs(plan: CopyPlan, info: DestInfo): Promise<void>;
  /** Recreates symlinks (`--no-deref`); failures are reported per link. */
  makeLinks(plan: CopyPlan, force: boolean, fail: (dest: string, err: Error) => void): Promise<void>;
  /** A refusal to write `file` (a parent leading out of the destination), or null. */
  checkTarget(file: string): Error | null;
  /** BLAKE3 of each file as stored now, or the error. */
  hashes(paths: readonly string[]): Promise<(string | Error)[]>;
  /** Permission bits of source files (-p), or why each could not be read. */
  modes(files: readonly PlannedFile[]): Promise<(number | null | Error)[]>;
  /** Sets modes and times: per entry of `files` then `dirs`, what failed (null if nothing). */
  applyAttrs(files: readonly Attrs[], dirs: readonly Attrs[]): Promise<(Error | null)[]>;
  /** mkdir -p of `p`'s parent (sync makes its destination's directories as needed). */
  makeParents(p: string): Promise<void>;
  /**
   * Removes `files`, then `dirs` (deepest first, as given); per entry of both, what failed. A
   * directory that is not empty (it holds entries the sync excluded) stays, and is no failure.
   */
  remove(files: readonly string[], dirs: readonly string[]): Promise<(Error | null)[]>;
  /** `bcmr remove`: what `p` is (a local link counts as a file), or null when missing. */
  entryKind(p: string): Promise<{ isDir: boolean } | null>;
  /** `bcmr remove`: whole operands (rm -rf, rm -f, rmdir); per item, why not (rm's words) or null. */
  removeWhole(items: readonly Removal[]): Promise<(string | null)[]>;
}

export class LocalSide implements Side {
  readonly remote = null;
  private guard: LocalTreeGuard | null = null;

  /**
   * `guarded`: the names come from a remote listing (a possibly hostile server), so directories
   * are made one at a time and no file is written where its parent leads out (CVE-2019-6111).
   * A local-to-local copy follows the user's own links in the destination, as cp does.
   */
  constructor(private readonly guarded: boolean) {}

  resolve(p: string): string {
    return p;
  }

  async tree(p: string, opts: WalkOptions, failures: Failures): Promise<SourceTree | null> {
    return walkLocal(p, opts, failures);
  }

  async destInfo(p: string, mustBeDir: boolean): Promise<DestInfo> {
    try {
      return { path: p, isDir: fs.statSync(p).isDirectory(), mustBeDir, parentExists: true };
    } catch {
      let parentExists = false;
      try {
        parentExists = fs.statSync(path.dirname(path.resolve(p))).isDirectory();
      } catch {}
      return { path: p, isDir: null, mustBeDir, parentExists };
    }
  }

  async makeParents(p: string): Promise<void> {
    fs.mkdirSync(path.dirname(path.resolve(p)), { recursive: true });
  }

  async remove(files: readonly string[], dirs: readonly string[]): Promise<(Error | null)[]> {
    const out: (Error | null)[] = [];
    for (const f of files) {
      try {
        fs.unlinkSync(f);
        out.push(null);
      } catch (err) {
        out.push((err as NodeJS.ErrnoException).code === 'ENOENT' ? null : (err as Error));
      }
    }
    for (const d of dirs) {
      try {
        fs.rmdirSync(d);
        out.push(null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        out.push(code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOENT' ? null : (err as Error));
      }
    }
    return out;
  }

  async entryKind(p: string): Promise<{ isDir: boolean } | null> {
    return statLocal(p);
  }

  async removeWhole(items: readonly Removal[]): Promise<(string | null)[]> {
    return items.map(removeLocal);
  }

  async existing(plan: CopyPlan): Promise<Set<string>> {
    const s = new Set<string>();
    for (const f of plan.files) if (fs.lstatSync(f.dest, { throwIfNoEntry: false })) s.add(f.dest);
    return s;
  }

  async makeDirs(plan: CopyPlan, info: DestInfo): Promise<void> {
    if (this.guarded) this.guard = new LocalTreeGuard(info);
    for (const d of plan.dirs) {
      if (this.guard) {
        const err = this.guard.mkdir(d.dest);
        if (err) throw err;
      } else fs.mkdirSync(d.dest, { recursive: true });
    }
  }

  async makeLinks(plan: CopyPlan, force: boolean, fail: (dest: string, err: Error) => void): Promise<void> {
    for (const l of plan.links) {
      try {
        if (force) fs.rmSync(l.dest, { force: true });
        fs.symlinkSync(l.target, l.dest);
      } catch (err) {
        fail(l.dest, err as Error);
      }
    }
  }

  checkTarget(file: string): Error | null {
    return this.guard?.checkParent(file) ?? null;
  }

  hashes(paths: readonly string[]): Promise<(string | Error)[]> {
    return Promise.all(paths.map((p) => fileHashHex(p).catch((e: Error) => e)));
  }

  async modes(files: readonly PlannedFile[]): Promise<(number | null | Error)[]> {
    return files.map((f) => f.mode);
  }

  async applyAttrs(files: readonly Attrs[], dirs: readonly Attrs[]): Promise<(Error | null)[]> {
    return applyLocalAttrs(files, dirs);
  }
}

export class RemoteSide implements Side {
  constructor(readonly remote: RemoteFs) {}

  resolve(p: string): string {
    return absoluteRemote(this.remote.home, p);
  }

  async tree(p: string, opts: WalkOptions, failures: Failures): Promise<SourceTree | null> {
    const abs = this.resolve(p);
    const st = await this.remote.stat(abs);
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
    if (!opts.recursive) {
      failures.push({ path: abs, error: new PathError(`${abs}: is a directory (use -r to copy trees)`) });
      return null;
    }
    const listed = await this.remote.list(abs);
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
      if (isExcluded(e.path, opts.exclude, e.isDir) || excludedDirs.some((d) => e.path.startsWith(d))) {
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

  async destInfo(p: string, mustBeDir: boolean): Promise<DestInfo> {
    const abs = this.resolve(p);
    const st = await this.remote.stat(abs);
    if (st) return { path: abs, isDir: st.isDir, mustBeDir, parentExists: true };
    const parent = await this.remote.stat(path.posix.dirname(abs));
    return { path: abs, isDir: null, mustBeDir, parentExists: parent?.isDir === true };
  }

  /** One Stat or List per copied root, a Stat per loose file. */
  async existing(plan: CopyPlan): Promise<Set<string>> {
    const s = new Set<string>();
    const roots = new Set<string>();
    for (const d of plan.dirs) if (!plan.dirs.some((p) => d.dest.startsWith(`${p.dest}/`))) roots.add(d.dest);
    for (const root of roots) {
      const st = await this.remote.stat(root);
      if (st?.isDir) for (const e of await this.remote.list(root)) s.add(path.posix.join(root, e.path));
    }
    const loose = plan.files.filter((f) => ![...roots].some((r) => f.dest.startsWith(`${r}/`)));
    for (const f of loose) if (await this.remote.stat(f.dest)) s.add(f.dest);
    return s;
  }

  async makeDirs(plan: CopyPlan): Promise<void> {
    await this.remote.mkdirs(plan.dirs.map((d) => d.dest));
  }

  async makeParents(p: string): Promise<void> {
    await this.remote.mkdirs([path.posix.dirname(this.resolve(p))]);
  }

  /**
   * One `sh -s` script (the protocol has no delete; remove_script.ts): files in few `rm`
   * processes, a file that cannot be removed said by its index; a directory that is not empty
   * stays quietly.
   */
  async remove(files: readonly string[], dirs: readonly string[]): Promise<(Error | null)[]> {
    const out = await this.remote.script(removeFilesScript(files, dirs));
    return [...entryFailures(out, files.length, 'rm failed'), ...dirs.map(() => null)];
  }

  async entryKind(p: string): Promise<{ isDir: boolean } | null> {
    return this.remote.stat(p); // through the server: one confined by --root refuses outside paths
  }

  async removeWhole(items: readonly Removal[]): Promise<(string | null)[]> {
    return removeOutcomes(await this.remote.script(removeScript(items)), items.length);
  }

  async makeLinks(plan: CopyPlan, force: boolean, fail: (dest: string, err: Error) => void): Promise<void> {
    if (plan.links.length === 0) return;
    const failed = entryFailures(
      await this.remote.script(remoteLinkScript(plan.links, force)),
      plan.links.length,
      'cannot make the link',
    );
    for (const [i, err] of failed.entries()) if (err) fail(plan.links[i].dest, err);
  }

  checkTarget(): Error | null {
    return null; // the server confines every path itself
  }

  hashes(paths: readonly string[]): Promise<(string | Error)[]> {
    return this.remote.hashFiles(paths);
  }

  /**
   * The protocol carries no modes: one `stat` over ssh for all of them, every answer in its
   * file's place. When any file cannot be stat'ed (gone, unreadable), each is asked on its own
   * and answers `-`: a failure never shifts the others' modes onto the wrong files.
   */
  async modes(files: readonly PlannedFile[]): Promise<(number | null | Error)[]> {
    if (files.length === 0) return [];
    const paths = files.map((f) => f.src);
    // printf is a shell builtin, so the list is not bound by the kernel's argument limit.
    const out = (
      await this.remote.script(
        sh`if stat -c %a / >/dev/null 2>&1; then set -- -c %a; else set -- -f %Lp; fi
l() { printf '%s\\0' ${paths}; }
if o=$(l | xargs -0 stat -L "$@" -- 2>/dev/null); then printf '%s\\n' "$o"
else for f in ${paths}; do stat -L "$@" -- "$f" 2>/dev/null || echo -; done; fi
`,
      )
    )
      .trim()
      .split('\n');
    if (out.length !== paths.length)
      throw new RemoteError(`-p: the remote's stat answered ${out.length} lines for ${paths.length} files`);
    return out.map((line, i) =>
      /^[0-7]+$/.test(line) ? Number.parseInt(line, 8) : new RemoteError(`${paths[i]}: cannot read its mode`),
    );
  }

  async applyAttrs(files: readonly Attrs[], dirs: readonly Attrs[]): Promise<(Error | null)[]> {
    const script = remoteAttrScript(files, dirs);
    if (!script) return [...files, ...dirs].map(() => null);
    return entryFailures(
      await this.remote.script(script),
      files.length + dirs.length,
      'cannot set mode or time',
    );
  }
}
