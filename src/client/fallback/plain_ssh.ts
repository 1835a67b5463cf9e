/**
 * The fallback when the remote has neither bcmr nor Node (PROTOCOL.md section 15): POSIX sh and
 * the remote's own tar, find and stat, multiplexed over a ControlMaster of our own (a private
 * ControlPath in a temp dir, closed at the end) so each step costs a channel, not a handshake.
 * Trees move as one tar stream each way (tar_download.ts, tar_upload.ts); files of
 * CAT_MIN_BYTES or more move alone through `cat`, which is as fast for them. Every command is
 * sh code that never passes through the login shell as text (remote_shell.ts), so fish and csh
 * accounts work too. Uploads land in temp or staging names that are published only once
 * checked; downloads are size-checked and hashed locally before being published.
 */
import { type ChildProcess, type ChildProcessByStdio, spawn } from 'node:child_process';
import { closeSync, constants, fstatSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { Blake3Hasher, fileHashHex } from '../../codec/hash.js';
import type { RemoteEndpoint } from '../../core/endpoint.js';
import type { StatResult } from '../../core/items.js';
import {
  type BatchCallbacks,
  type FileResult,
  fileResult,
  type GetItem,
  type PutItem,
} from '../../core/items.js';
import type { RemoteFs, ShellTools } from '../../core/remote_fs.js';
import type { WorkQueue } from '../../core/work_queue.js';
import { ConnectionClosedError, IntegrityError, RemoteError, SshError } from '../../errors.js';
import type { ListEntry } from '../../protocol/messages.js';
import { writeLimited } from '../../transport/rate_limit.js';
import { FdFile } from '../../util/fd_file.js';
import { BlockBuffers, RELEASED, readBlocks } from '../../util/file_blocks.js';
import { type ShText, sh, shellQuote, shRaw } from '../../util/shell.js';
import { publish, tempNameFor } from '../../util/temp_file.js';
import { bootstrap, PROBE_SCRIPT, parseProbe, type RemoteTools, statFormat } from '../shell/remote_shell.js';
import { ControlMaster } from '../ssh/control_master.js';
import { runRemote } from '../ssh/run_remote.js';
import { type SshConfig, sshArgv } from '../ssh/ssh_start.js';
import { getResumableShell } from './shell_resume.js';
import { downloadTar } from './tar_download.js';
import { uploadTar } from './tar_upload.js';

/** Big files in flight at once over the master (each its own `cat`). */
const CONCURRENCY = 4;

/**
 * From this size a file moves alone through `cat` (as fast as tar for it, and no staging copy).
 * BCMR_CAT_MIN_BYTES lowers it so tests can drive the big-file scripts with small files.
 */
export const CAT_MIN_BYTES = Number(process.env.BCMR_CAT_MIN_BYTES) || 64 << 20;

/** At most this many bytes per tar stream, so a failure costs a bounded redo and progress is even. */
const TAR_BATCH_BYTES = 1 << 30;

export class PlainSsh implements RemoteFs {
  readonly via = 'ssh';
  readonly plane = 'ssh';
  readonly server = 'fallback';
  private readonly children = new Set<import('node:child_process').ChildProcess>();
  private destroyed = false;

  private tools: RemoteTools = { home: '', tar: 'none', stat: 'gnu', b3sum: false, serverMayRun: false };

  private constructor(
    private readonly cfg: SshConfig,
    private readonly target: RemoteEndpoint,
    private readonly master: ControlMaster,
    private readonly sync: boolean,
    private readonly fast: boolean,
    private readonly force: boolean,
  ) {}

  get home(): string {
    return this.tools.home;
  }

  /** Whether bcmr serve could run there now (see shell_hosts.ts). */
  get serverMayRun(): boolean {
    return this.tools.serverMayRun;
  }

  /** What the remote has, probed once (--json's start says it). */
  get shellTools(): ShellTools {
    return { tar: this.tools.tar, stat: this.tools.stat, verify: this.tools.b3sum ? 'b3sum' : 'size' };
  }

  static async open(
    cfg: SshConfig,
    target: RemoteEndpoint,
    opts: { sync: boolean; fast: boolean; force?: boolean },
  ): Promise<PlainSsh> {
    const self = new PlainSsh(
      cfg,
      target,
      new ControlMaster(cfg, target),
      opts.sync,
      opts.fast,
      opts.force ?? false,
    );
    const r = await self.run('sh -s', PROBE_SCRIPT);
    if (r.code !== 0) {
      await self.master.close();
      throw new SshError(`ssh to ${target.host} failed: ${lastLine(r.stderr) || `exit ${r.code}`}`);
    }
    self.tools = parseProbe(r.stdout.toString('utf8'));
    return self;
  }

  private get control(): string[] {
    return this.master.options;
  }

  private run(command: string, input?: string) {
    return runRemote(this.cfg, this.target, command, {
      input,
      extra: this.control,
      onChild: (c) => {
        this.children.add(c);
        c.once('close', () => this.children.delete(c));
      },
    });
  }

  async stat(p: string): Promise<StatResult | null> {
    const r = await this.run(
      'sh -s',
      sh`exec stat -L ${shRaw(statFormat(this.tools.stat))} -- ${p} 2>/dev/null\n`.text,
    );
    if (r.code !== 0) return null;
    const m = /^(\d+) (\d+) (.*)$/m.exec(r.stdout.toString('utf8'));
    if (!m) throw new RemoteError(`cannot read stat output for ${p}`);
    return { size: Number(m[1]), mtime: Number(m[2]), isDir: /directory/i.test(m[3]) };
  }

  /**
   * Every file and directory under `p` (links followed), with the remote's own find and stat:
   * `find -print0` names (any bytes but NUL) and one `stat` line per name, in the same order.
   */
  async list(p: string): Promise<ListEntry[]> {
    const script = sh`cd -- ${p} || exit 1
t=$(mktemp) || exit 1
trap 'rm -f -- "$t"' EXIT
find -L . ! -name . \\( -type f -o -type d \\) -print0 > "$t" || exit 1
if [ -s "$t" ]; then xargs -0 stat -L ${shRaw(statFormat(this.tools.stat))} -- < "$t" || exit 1; fi
echo ${NAMES_MARK}
cat "$t"
`.text;
    const r = await this.run('sh -s', script);
    if (r.code !== 0) throw new RemoteError(`cannot list ${p}: ${lastLine(r.stderr)}`);
    const out = r.stdout;
    const mark = out.indexOf(Buffer.from(`${NAMES_MARK}\n`));
    if (mark < 0) throw new RemoteError(`cannot list ${p}: no names in the listing`);
    const stats = out.subarray(0, mark).toString('utf8').split('\n').filter(Boolean);
    const names = out
      .subarray(mark + NAMES_MARK.length + 1)
      .toString('utf8')
      .split('\0')
      .filter(Boolean);
    if (names.length !== stats.length)
      throw new RemoteError(`cannot list ${p}: it changed while being listed`);
    return names.map((n, i) => {
      const m = /^(\d+) (\d+) (.*)$/.exec(stats[i]);
      if (!m) throw new RemoteError(`cannot read stat output for ${n}`);
      return {
        path: n.replace(/^\.\//, ''),
        size: Number(m[1]),
        mtime: Number(m[2]),
        isDir: /directory/i.test(m[3]),
      };
    });
  }

  /**
   * Makes the directories (parents too) and remembers which of them it made: only those may be
   * replaced whole by a tar upload's staged copy (see tar_upload.ts); an existing one stays.
   */
  async mkdirs(paths: readonly string[]): Promise<void> {
    if (paths.length === 0) return;
    const lines: ShText[] = [];
    for (let i = 0; i < paths.length; i += 500) {
      const chunk = paths.slice(i, i + 500);
      lines.push(sh`for d in ${chunk}; do [ -d "$d" ] || printf '%s\\0' "$d"; done`);
      lines.push(sh`mkdir -p -- ${chunk} || exit 1`);
    }
    const r = await this.run('sh -s', `${lines.join('\n')}\n`);
    if (r.code !== 0) throw new RemoteError(`mkdir failed: ${lastLine(r.stderr)}`);
    for (const d of r.stdout.toString('utf8').split('\0')) if (d) this.madeDirs.add(d);
  }

  /** Directories `mkdirs` created (they did not exist before). */
  private readonly madeDirs = new Set<string>();

  async script(text: ShText): Promise<string> {
    // sh -s: the script is stdin, never a word of the login shell (fish, csh).
    const r = await this.run('sh -s', text.text);
    if (r.code !== 0)
      throw new RemoteError(`remote command failed: ${lastLine(r.stderr) || `exit ${r.code}`}`);
    return r.stdout.toString('utf8');
  }

  /**
   * BLAKE3 of each stored file: by the remote's `b3sum` where it has one, else read back as one
   * tar stream and hashed here.
   */
  async hashFiles(paths: readonly string[]): Promise<(string | Error)[]> {
    if (this.tools.b3sum) {
      const lines: string[] = [];
      for (let i = 0; i < paths.length; i += 500)
        lines.push(sh`b3sum --no-names -- ${paths.slice(i, i + 500)} || exit 1`.text);
      const r = await this.run('sh -s', `${lines.join('\n')}\n`);
      const hashes = r.stdout.toString('utf8').split('\n');
      if (r.code === 0 && hashes.length > paths.length) return paths.map((_, i) => hashes[i]);
    }
    // Read back as one tar stream and hashed as it arrives; nothing is written here.
    const out = new Map<string, string | Error>();
    await downloadTar(
      paths.map((p) => ({ remote: p, local: '', size: -1 })),
      (script, input, onData) => this.streamSh(script, input, onData),
      { hash: true, anySize: true, hashOnly: true },
      { onFileDone: (r) => out.set(r.item.remote, r.error ?? r.hash ?? new RemoteError('no hash')) },
    );
    return paths.map((p) => out.get(p) ?? new RemoteError(`cannot read ${p}`));
  }

  /** Small files as tar streams (unless the remote's tar cannot), big ones one `cat` each. */
  async upload(queue: WorkQueue<PutItem>, cb: BatchCallbacks<PutItem>): Promise<void> {
    const small = this.tools.tar === 'none' ? [] : queue.extract((it) => (it.size ?? 0) < CAT_MIN_BYTES);
    for (const batch of batches(small, (it) => it.size ?? 0)) {
      if (this.destroyed) break;
      await uploadTar(
        batch,
        (script, feed) => this.feedSh(script, feed),
        { force: this.force, sync: this.sync, b3sum: this.tools.b3sum, madeDirs: this.madeDirs },
        cb,
      );
    }
    await this.each(queue, cb, (item) => this.putOne(item, cb));
  }

  async download(queue: WorkQueue<GetItem>, cb: BatchCallbacks<GetItem>): Promise<void> {
    // busybox tar has no --null: its names could not hold a newline.
    const tar = this.tools.tar === 'gnu' || this.tools.tar === 'bsd';
    const small = tar ? queue.extract((it) => it.size < CAT_MIN_BYTES) : [];
    for (const batch of batches(small, (it) => it.size)) {
      if (this.destroyed) break;
      await downloadTar(
        batch,
        (script, input, onData) => this.streamSh(script, input, onData),
        { hash: !this.fast },
        cb,
      );
    }
    await this.each(queue, cb, (item) => this.getOne(item, cb));
  }

  /** Runs sh `script` with `input` after it on stdin (see remote_shell.ts). */
  private async streamSh(script: string, input: Uint8Array, onData: (b: Uint8Array) => Promise<void> | void) {
    const text = Buffer.from(script);
    const code = await this.stream(
      bootstrap(text),
      async (write) => {
        await write(Buffer.concat([text, input]));
      },
      onData,
    );
    return { code, stderr: this.lastErr };
  }

  private async feedSh(script: string, feed: (write: (b: Uint8Array) => Promise<void>) => Promise<void>) {
    const text = Buffer.from(script);
    const out: Buffer[] = [];
    const code = await this.stream(
      bootstrap(text),
      async (write) => {
        await write(text);
        await feed(write);
      },
      (b) => {
        out.push(Buffer.from(b));
      },
    );
    return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: this.lastErr };
  }

  async close(): Promise<void> {
    await this.master.close();
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    for (const c of this.children) c.kill('SIGTERM');
    await this.close();
  }

  private async each<T>(
    queue: WorkQueue<T>,
    cb: BatchCallbacks<T>,
    one: (item: T) => Promise<{ bytes: number; hash: string | null; resumedFrom?: number }>,
  ): Promise<void> {
    const worker = async () => {
      for (let item = queue.take(); item !== undefined; item = queue.take()) {
        const t0 = performance.now();
        let r: FileResult<T>;
        try {
          if (this.destroyed) throw new ConnectionClosedError('Interrupted');
          const { bytes, hash, resumedFrom } = await one(item);
          r = fileResult(item, t0, { bytes, hash }, resumedFrom ? { resumedFrom } : {});
        } catch (err) {
          r = fileResult(item, t0, { error: err as Error });
        }
        cb.onFileDone?.(r);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  }

  private async putOne(
    item: PutItem,
    cb: BatchCallbacks<PutItem>,
  ): Promise<{ bytes: number; hash: string | null }> {
    const f = FdFile.open(item.local, 'r');
    let hasher: string;
    let size: number;
    try {
      size = f.stat().size;
      const dest = item.remote;
      const publishCmd = item.overwrite ? sh`mv -f -- "$t" ${dest}` : sh`ln -- "$t" ${dest} && rm -f -- "$t"`;
      const cmd =
        // noclobber: the temp name is created new (O_EXCL), never opened through a link planted
        // there, and only then is it ours to remove; the data goes through that descriptor.
        sh`t=${tempNameFor(item.remote)}; set -C; exec 3> "$t" || exit 1; set +C; trap 'rm -f -- "$t"' EXIT HUP INT TERM PIPE; \
cat >&3 || exit 1; exec 3>&-; n=$(wc -c < "$t"); \
if [ "$n" -ne ${size} ]; then echo "received $n of ${size} bytes" >&2; exit 3; fi; \
${shRaw(this.sync ? 'sync "$t" 2>/dev/null; ' : '')}${publishCmd}`.text;
      let sent = 0;
      let code: number | null;
      if (!/[\n!]/.test(cmd) && !this.cfg.bwlimit) {
        // The script fits the command line of any login shell (no newline, no `!`): then ssh
        // reads the file itself as its stdin, and the bytes never pass through this process.
        // BLAKE3 is computed meanwhile from the page cache; progress from the shared offset.
        const hashing = fileHashHex(item.local);
        const progress = setInterval(() => {
          const at = Math.min(fdPosition(f.fd) ?? sent, size);
          if (at > sent) cb.onBytes?.(at - sent, item);
          sent = at;
        }, 100);
        try {
          code = await this.stream(`sh -c ${shellQuote(cmd)}`, null, null, undefined, undefined, f.fd);
        } finally {
          clearInterval(progress);
        }
        if (size > sent) cb.onBytes?.(size - sent, item);
        sent = size;
        hasher = await hashing;
      } else {
        const whole = new Blake3Hasher();
        ({ code } = await this.feedSh(cmd, async (write) => {
          await readBlocks(f, 0, size, new BlockBuffers(), async (block) => {
            whole.update(block);
            sent += block.length;
            cb.onBytes?.(block.length, item);
            await write(block);
            return RELEASED;
          });
        }));
        hasher = whole.digest('hex');
      }
      if (code !== 0)
        throw new RemoteError(`${item.remote}: upload failed${this.lastErr ? `: ${this.lastErr}` : ''}`);
      if (sent !== size) throw new IntegrityError(`${item.local}: file changed size while being sent`);
    } finally {
      f.close();
    }
    return { bytes: size, hash: hasher };
  }

  private async getOne(
    item: GetItem,
    cb: BatchCallbacks<GetItem>,
  ): Promise<{ bytes: number; hash: string | null; resumedFrom?: number }> {
    if (item.resume)
      return getResumableShell(item, (script, input, onData) => this.streamSh(script, input, onData), cb);
    // ssh writes the file itself (its stdout is the temp file): the bytes never pass through
    // this process, which is what brings a big download to scp's cost. Progress and the size
    // bound come from the file's size, polled; BLAKE3 is computed afterwards from the page cache.
    const tmp = tempNameFor(item.local);
    const fd = openSync(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o644,
    );
    let ok = false;
    let got = 0;
    let tooMuch = false;
    let child: ChildProcess | undefined;
    // Closed exactly once: after an await its number may belong to another worker's download.
    let fdOpen = true;
    const closeFd = () => {
      if (fdOpen) {
        fdOpen = false;
        closeSync(fd);
      }
    };
    const text = Buffer.from(sh`exec cat -- ${item.remote}\n`.text);
    const poll = setInterval(() => {
      const now = fstatSync(fd).size;
      if (now > item.size && !tooMuch) {
        tooMuch = true;
        child?.kill('SIGTERM');
      }
      if (now > got) cb.onBytes?.(Math.min(now, item.size) - Math.min(got, item.size), item);
      got = now;
    }, 100);
    try {
      // With --bwlimit the bytes come through here, each chunk after its tokens.
      const limited = this.cfg.bwlimit
        ? (b: Uint8Array) => {
            for (let o = 0; o < b.length; ) o += writeSync(fd, b, o);
          }
        : null;
      const code = await this.stream(
        bootstrap(text),
        async (write) => write(text),
        limited,
        limited ? undefined : fd,
        (c) => {
          child = c;
        },
      );
      clearInterval(poll);
      const size = fstatSync(fd).size;
      if (size > got) cb.onBytes?.(Math.min(size, item.size) - Math.min(got, item.size), item);
      got = size;
      closeFd();
      if (tooMuch || size > item.size)
        throw new IntegrityError(`${item.remote}: more than the ${item.size} bytes announced`);
      if (code !== 0)
        throw new RemoteError(`${item.remote}: download failed${this.lastErr ? `: ${this.lastErr}` : ''}`);
      if (size !== item.size)
        throw new IntegrityError(`${item.remote}: received ${size} of ${item.size} bytes`);
      // --fast: sizes only; -V hashes the result afterwards.
      const hash = this.fast ? null : await fileHashHex(tmp);
      publish(tmp, item.local, item.overwrite ?? true);
      ok = true;
      return { bytes: size, hash };
    } finally {
      clearInterval(poll);
      try {
        closeFd();
      } catch {}
      if (!ok) {
        try {
          unlinkSync(tmp);
        } catch {}
      }
    }
  }

  private lastErr = '';

  /**
   * Runs `command`; `feed` writes its stdin (with backpressure), `onData` consumes its stdout
   * in order. Resolves with the exit code.
   */
  private stream(
    command: string,
    feed: ((write: (b: Uint8Array) => Promise<void>) => Promise<void>) | null,
    onData: ((b: Uint8Array) => unknown) | null,
    /** ssh's stdout goes straight to this descriptor (a file) instead of through us. */
    stdoutFd?: number,
    onChild?: (c: ChildProcess) => void,
    /** ssh reads its stdin straight from this descriptor (a file); `feed` must be null. */
    stdinFd?: number,
  ): Promise<number | null> {
    const { file, args } = sshArgv(this.cfg, this.target, command, ['-o', 'BatchMode=yes', ...this.control]);
    const child = spawn(file, args, {
      stdio: [stdinFd ?? 'pipe', stdoutFd ?? 'pipe', 'pipe'],
    }) as ChildProcessByStdio<Writable | null, Readable | null, Readable>;
    onChild?.(child);
    this.children.add(child);
    let err = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      err = (err + s).slice(-4096);
    });
    child.stdin?.on('error', () => {});
    const closed = new Promise<number | null>((resolve, reject) => {
      child.once('error', (e) => reject(new SshError(`cannot run ${file}: ${e.message}`)));
      child.once('close', (code) => {
        this.children.delete(child);
        this.lastErr = lastLine(err);
        resolve(code);
      });
    });
    // Handled where it is awaited; marked handled now, so a spawn error that comes first is
    // never an unhandled rejection (which would end the process).
    closed.catch(() => {});
    const reading = (async () => {
      const limiter = this.cfg.bwlimit;
      if (child.stdout)
        for await (const chunk of child.stdout) {
          await limiter?.in.take((chunk as Buffer).length);
          if (onData) await onData(chunk as Buffer);
        }
    })();
    const writing = (async () => {
      if (feed) {
        const put = (b: Uint8Array) =>
          new Promise<void>((resolve, reject) => {
            child.stdin?.write(b, (e) =>
              e ? reject(new ConnectionClosedError(`ssh closed: ${e.message}`)) : resolve(),
            );
          });
        const limiter = this.cfg.bwlimit;
        // --bwlimit: small pieces, each after its tokens, for a steady rate.
        await feed((b) => (limiter ? writeLimited(limiter.out, b, put) : put(b)));
      }
      child.stdin?.end();
    })();
    return (async () => {
      try {
        await Promise.all([reading, writing]);
      } catch (e) {
        child.kill('SIGTERM');
        await closed.catch(() => {});
        throw e;
      }
      return closed;
    })();
  }
}

/** Separates the stat lines of a listing from its NUL-separated names. */
const NAMES_MARK = '--bcmr-names--';

/** The file offset of our descriptor (shared with a child reading it), from /proc; null elsewhere. */
function fdPosition(fd: number): number | null {
  try {
    const m = /^pos:\s*(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Consecutive runs of items of at most TAR_BATCH_BYTES (or one item). */
function batches<T>(items: readonly T[], size: (it: T) => number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const it of items) {
    if (cur.length > 0 && bytes + size(it) > TAR_BATCH_BYTES) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(it);
    bytes += size(it);
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

function lastLine(s: string): string {
  return s.trim().split('\n').pop()?.trim() ?? '';
}
