/**
 * The fallback when the remote has no bcmr (PROTOCOL.md section 15): one ssh command per step
 * with shell-quoted paths, multiplexed over a ControlMaster of our own (a private ControlPath
 * in a temp dir, closed at the end) so each step costs a channel, not a handshake.
 * Uploads still land in a temp file that the remote shell renames only once the byte count is
 * right; downloads are size-checked and hashed locally before being published.
 */
import { spawn } from 'node:child_process';
import { constants, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Blake3Hasher } from '../codec/hash.js';
import type { RemoteEndpoint } from '../core/endpoint.js';
import {
  type BatchCallbacks,
  type FileResult,
  fileResult,
  type GetItem,
  type PutItem,
} from '../core/items.js';
import type { RemoteFs } from '../core/remote_fs.js';
import type { WorkQueue } from '../core/work_queue.js';
import { ConnectionClosedError, IntegrityError, RemoteError, SshError } from '../errors.js';
import type { ListEntry } from '../protocol/messages.js';
import { FdFile } from '../util/fd_file.js';
import { BlockBuffers, RELEASED, readBlocks } from '../util/file_blocks.js';
import { shellQuote } from '../util/shell.js';
import { publish, tempNameFor } from '../util/temp_file.js';
import type { StatResult } from './serve_client.js';
import { runRemote, type SshConfig, sshArgv } from './ssh.js';

/** Commands in flight at once over the master. */
const CONCURRENCY = 4;

export class PlainSsh implements RemoteFs {
  readonly via = 'ssh';
  readonly plane = 'ssh';
  readonly server = 'fallback';
  private readonly children = new Set<import('node:child_process').ChildProcess>();
  private destroyed = false;

  private constructor(
    private readonly cfg: SshConfig,
    private readonly target: RemoteEndpoint,
    private readonly controlDir: string,
    private readonly sync: boolean,
    private readonly fast: boolean,
    readonly home: string,
  ) {}

  static async open(
    cfg: SshConfig,
    target: RemoteEndpoint,
    opts: { sync: boolean; fast: boolean },
  ): Promise<PlainSsh> {
    const controlDir = mkdtempSync(path.join(os.tmpdir(), 'bcmr-ssh-'));
    const self = new PlainSsh(cfg, target, controlDir, opts.sync, opts.fast, '');
    const r = await self.run(`printf '%s\\n' "$HOME"`);
    if (r.code !== 0) {
      rmSync(controlDir, { recursive: true, force: true });
      throw new SshError(`ssh to ${target.host} failed: ${lastLine(r.stderr) || `exit ${r.code}`}`);
    }
    return new PlainSsh(
      cfg,
      target,
      controlDir,
      opts.sync,
      opts.fast,
      r.stdout.toString('utf8').replace(/\n$/, ''),
    );
  }

  private get control(): string[] {
    return [
      '-o', 'ControlMaster=auto',
      '-o', `ControlPath=${path.join(this.controlDir, 'cm')}`,
      '-o', 'ControlPersist=30',
    ]; // biome-ignore format: option pairs
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
    const q = shellQuote(p);
    const r = await this.run(`stat -L -c '%s %Y %F' -- ${q} 2>/dev/null || stat -L -f '%z %m %HT' -- ${q}`);
    if (r.code !== 0) return null;
    const m = /^(\d+) (\d+) (.*)$/m.exec(r.stdout.toString('utf8'));
    if (!m) throw new RemoteError(`cannot read stat output for ${p}`);
    return { size: Number(m[1]), mtime: Number(m[2]), isDir: /directory/i.test(m[3]) };
  }

  async list(p: string): Promise<ListEntry[]> {
    // NUL-terminated records: type, size, mtime, then the name (which may hold tabs or newlines).
    const r = await this.run(
      `cd -- ${shellQuote(p)} && find -L . -mindepth 1 -printf '%y\\t%s\\t%T@\\t%P\\0'`,
    );
    if (r.code !== 0) throw new RemoteError(`cannot list ${p}: ${lastLine(r.stderr)}`);
    const out: ListEntry[] = [];
    for (const rec of r.stdout.toString('utf8').split('\0')) {
      if (rec === '') continue;
      const [type, size, mtime] = rec.split('\t', 3);
      const name = rec.split('\t').slice(3).join('\t');
      out.push({ path: name, size: Number(size), mtime: Math.floor(Number(mtime)), isDir: type === 'd' });
    }
    return out;
  }

  async mkdirs(paths: readonly string[]): Promise<void> {
    for (let i = 0; i < paths.length; i += 500) {
      const r = await this.run(
        `mkdir -p -- ${paths
          .slice(i, i + 500)
          .map(shellQuote)
          .join(' ')}`,
      );
      if (r.code !== 0) throw new RemoteError(`mkdir failed: ${lastLine(r.stderr)}`);
    }
  }

  async script(text: string): Promise<string> {
    const r = await this.run('sh -s', text);
    if (r.code !== 0)
      throw new RemoteError(`remote command failed: ${lastLine(r.stderr) || `exit ${r.code}`}`);
    return r.stdout.toString('utf8');
  }

  async hashFiles(paths: readonly string[]): Promise<(string | Error)[]> {
    // No hasher on the remote: read each file back and hash it here.
    const out: (string | Error)[] = [];
    for (const p of paths) {
      const h = new Blake3Hasher();
      const code = await this.stream(`cat -- ${shellQuote(p)}`, null, (b) => h.update(b)).catch(
        (e: Error) => e,
      );
      out.push(
        code instanceof Error ? code : code === 0 ? h.digest('hex') : new RemoteError(`cannot read ${p}`),
      );
    }
    return out;
  }

  upload(queue: WorkQueue<PutItem>, cb: BatchCallbacks<PutItem>): Promise<void> {
    return this.each(queue, cb, (item) => this.putOne(item, cb));
  }

  download(queue: WorkQueue<GetItem>, cb: BatchCallbacks<GetItem>): Promise<void> {
    return this.each(queue, cb, (item) => this.getOne(item, cb));
  }

  async close(): Promise<void> {
    const { file, args } = sshArgv(this.cfg, this.target, '', [...this.control, '-O', 'exit']);
    await new Promise<void>((resolve) => {
      const c = spawn(file, args.slice(0, -1), { stdio: 'ignore' });
      c.once('error', () => resolve());
      c.once('close', () => resolve());
    });
    rmSync(this.controlDir, { recursive: true, force: true });
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    for (const c of this.children) c.kill('SIGTERM');
    await this.close();
  }

  private async each<T>(
    queue: WorkQueue<T>,
    cb: BatchCallbacks<T>,
    one: (item: T) => Promise<{ bytes: number; hash: string | null }>,
  ): Promise<void> {
    const worker = async () => {
      for (let item = queue.take(); item !== undefined; item = queue.take()) {
        const t0 = performance.now();
        let r: FileResult<T>;
        try {
          if (this.destroyed) throw new ConnectionClosedError('Interrupted');
          const { bytes, hash } = await one(item);
          r = fileResult(item, t0, { bytes, hash });
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
    const hasher = new Blake3Hasher();
    let size: number;
    try {
      size = f.stat().size;
      const dest = shellQuote(item.remote);
      const tmp = shellQuote(tempNameFor(item.remote));
      const publishCmd = item.overwrite ? `mv -f -- "$t" ${dest}` : `ln -- "$t" ${dest} && rm -f -- "$t"`;
      const cmd =
        // noclobber: the temp name is created new (O_EXCL), never opened through a link planted
        // there, and only then is it ours to remove; the data goes through that descriptor.
        `t=${tmp}; set -C; exec 3> "$t" || exit 1; set +C; trap 'rm -f -- "$t"' EXIT HUP INT TERM PIPE; ` +
        `cat >&3 || exit 1; exec 3>&-; n=$(wc -c < "$t"); ` +
        `if [ "$n" -ne ${size} ]; then echo "received $n of ${size} bytes" >&2; exit 3; fi; ` +
        `${this.sync ? 'sync "$t" 2>/dev/null; ' : ''}${publishCmd}`;
      let sent = 0;
      const code = await this.stream(
        cmd,
        async (write) => {
          await readBlocks(f, 0, size, new BlockBuffers(), async (block) => {
            hasher.update(block);
            sent += block.length;
            cb.onBytes?.(block.length, item);
            await write(block);
            return RELEASED;
          });
        },
        null,
      );
      if (code !== 0)
        throw new RemoteError(`${item.remote}: upload failed${this.lastErr ? `: ${this.lastErr}` : ''}`);
      if (sent !== size) throw new IntegrityError(`${item.local}: file changed size while being sent`);
    } finally {
      f.close();
    }
    return { bytes: size, hash: hasher.digest('hex') };
  }

  private async getOne(
    item: GetItem,
    cb: BatchCallbacks<GetItem>,
  ): Promise<{ bytes: number; hash: string | null }> {
    const tmp = tempNameFor(item.local);
    const f = FdFile.open(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    );
    // --fast: sizes only; -V hashes the result afterwards.
    const hasher = this.fast ? null : new Blake3Hasher();
    let got = 0;
    let ok = false;
    try {
      let writing: Promise<void> | undefined;
      const code = await this.stream(`cat -- ${shellQuote(item.remote)}`, null, async (b) => {
        if (got + b.length > item.size)
          throw new IntegrityError(`${item.remote}: more than the ${item.size} bytes announced`);
        if (writing) await writing;
        writing = f.write(b, got);
        got += b.length;
        hasher?.update(b);
        cb.onBytes?.(b.length, item);
      });
      if (writing) await writing;
      if (code !== 0)
        throw new RemoteError(`${item.remote}: download failed${this.lastErr ? `: ${this.lastErr}` : ''}`);
      if (got !== item.size)
        throw new IntegrityError(`${item.remote}: received ${got} of ${item.size} bytes`);
      f.close();
      publish(tmp, item.local, item.overwrite ?? true);
      ok = true;
    } finally {
      f.close();
      if (!ok) {
        try {
          unlinkSync(tmp);
        } catch {}
      }
    }
    return { bytes: got, hash: hasher ? hasher.digest('hex') : null };
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
  ): Promise<number | null> {
    const { file, args } = sshArgv(this.cfg, this.target, command, ['-o', 'BatchMode=yes', ...this.control]);
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.add(child);
    let err = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      err = (err + s).slice(-4096);
    });
    child.stdin.on('error', () => {});
    const closed = new Promise<number | null>((resolve, reject) => {
      child.once('error', (e) => reject(new SshError(`cannot run ${file}: ${e.message}`)));
      child.once('close', (code) => {
        this.children.delete(child);
        this.lastErr = lastLine(err);
        resolve(code);
      });
    });
    const reading = (async () => {
      for await (const chunk of child.stdout) if (onData) await onData(chunk as Buffer);
    })();
    const writing = (async () => {
      if (feed) {
        await feed(
          (b) =>
            new Promise<void>((resolve, reject) => {
              child.stdin.write(b, (e) =>
                e ? reject(new ConnectionClosedError(`ssh closed: ${e.message}`)) : resolve(),
              );
            }),
        );
      }
      child.stdin.end();
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

function lastLine(s: string): string {
  return s.trim().split('\n').pop()?.trim() ?? '';
}
