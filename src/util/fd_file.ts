/**
 * A file descriptor with the right kind of call for each size. Small reads and writes, opens,
 * stats and closes are synchronous: on cached data they take microseconds, whereas each
 * async call is a round trip through the libuv pool, and thousands of small files make that
 * round trip the bottleneck. Large reads and writes go to the pool so they overlap with
 * network I/O.
 */
import fs from 'node:fs';

/** At or below this many bytes a read or write is done synchronously. */
export const SYNC_IO_MAX = 256 * 1024;

export class FdFile {
  private closed = false;
  /** Pool operations not yet completed: the descriptor is closed only after the last one. */
  private pending = 0;

  private constructor(
    readonly fd: number,
    readonly path: string,
  ) {}

  static open(path: string, flags: number | string, mode = 0o644): FdFile {
    return new FdFile(fs.openSync(path, flags, mode), path);
  }

  /** Takes ownership of a descriptor opened and checked elsewhere (the server's path guard). */
  static fromFd(fd: number, path: string): FdFile {
    return new FdFile(fd, path);
  }

  stat(): fs.Stats {
    return fs.fstatSync(this.fd);
  }

  read(buf: Uint8Array, length: number, position: number): number | Promise<number> {
    if (length <= SYNC_IO_MAX) return fs.readSync(this.fd, buf, 0, length, position);
    return this.onPool<number>((resolve, reject) =>
      fs.read(this.fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))),
    );
  }

  /** Writes all of `buf` at `position`. */
  write(buf: Uint8Array, position: number): Promise<void> | undefined {
    if (buf.length <= SYNC_IO_MAX) {
      let done = 0;
      while (done < buf.length) done += fs.writeSync(this.fd, buf, done, buf.length - done, position + done);
      return undefined;
    }
    return this.onPool<void>((resolve, reject) => {
      const step = (done: number): void => {
        fs.write(this.fd, buf, done, buf.length - done, position + done, (err, n) => {
          if (err) reject(err);
          else if (done + n < buf.length) step(done + n);
          else resolve();
        });
      };
      step(0);
    });
  }

  /**
   * Writes `bufs` back to back at `position` on the pool (one pwritev): the caller gathers
   * pieces as they arrive and keeps reading while the kernel copies them.
   */
  writev(bufs: Uint8Array[], position: number): Promise<void> {
    const total = bufs.reduce((n, b) => n + b.length, 0);
    return this.onPool<void>((resolve, reject) => {
      fs.writev(this.fd, bufs, position, (err, n) => {
        if (err) reject(err);
        else if (n === total) resolve();
        else {
          // Short write (rare): finish the rest in order, synchronously (the fd stays open).
          try {
            this.writevSync([Buffer.concat(bufs).subarray(n)], position + n);
            resolve();
          } catch (e) {
            reject(e);
          }
        }
      });
    });
  }

  writevSync(bufs: Uint8Array[], position: number): void {
    // One writev for all of them; a short write (rare: a signal, a full disk) finishes piecewise.
    const total = bufs.reduce((n, b) => n + b.length, 0);
    let done = bufs.length > 0 ? fs.writevSync(this.fd, bufs, position) : 0;
    if (done === total) return;
    let pos = position;
    for (const b of bufs) {
      if (done >= b.length) {
        done -= b.length;
        pos += b.length;
        continue;
      }
      let off = done;
      done = 0;
      while (off < b.length) off += fs.writeSync(this.fd, b, off, b.length - off, pos + off);
      pos += b.length;
    }
  }

  truncate(size: number): void {
    fs.ftruncateSync(this.fd, size);
  }

  /** fsync on the pool: it waits for the disk. */
  sync(): Promise<void> {
    return this.onPool<void>((resolve, reject) =>
      fs.fsync(this.fd, (err) => (err ? reject(err) : resolve())),
    );
  }

  /** Makes a directory's entries (a rename just done) durable. */
  static async syncDir(dir: string): Promise<void> {
    const d = FdFile.open(dir, 'r');
    try {
      await d.sync();
    } finally {
      d.close();
    }
  }

  /**
   * Closes the descriptor, or, while a pool operation on it is still running (a write left
   * behind by a failed transfer), as soon as that operation ends: closing earlier would let
   * the kernel give the number to a new pipe or socket, and the pending write would land there.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pending === 0) fs.closeSync(this.fd);
  }

  /** Runs one pool operation, counted so that close() can wait for it. */
  private onPool<T>(start: (resolve: (v: T) => void, reject: (e: unknown) => void) => void): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`${this.path}: file already closed`));
    this.pending++;
    return new Promise<T>(start).finally(() => {
      if (--this.pending === 0 && this.closed) fs.closeSync(this.fd);
    });
  }
}
