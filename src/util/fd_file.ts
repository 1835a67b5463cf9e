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

  private constructor(
    readonly fd: number,
    readonly path: string,
  ) {}

  static open(path: string, flags: number | string, mode = 0o644): FdFile {
    return new FdFile(fs.openSync(path, flags, mode), path);
  }

  stat(): fs.Stats {
    return fs.fstatSync(this.fd);
  }

  read(buf: Uint8Array, length: number, position: number): number | Promise<number> {
    if (length <= SYNC_IO_MAX) return fs.readSync(this.fd, buf, 0, length, position);
    return new Promise((resolve, reject) =>
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
    return new Promise((resolve, reject) => {
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
    return new Promise((resolve, reject) => {
      fs.writev(this.fd, bufs, position, (err, n) => {
        if (err) reject(err);
        else if (n === total) resolve();
        else {
          // Short write (rare): finish the rest in order.
          const rest = Buffer.concat(bufs).subarray(n);
          const w = this.write(rest, position + n);
          if (w) w.then(resolve, reject);
          else resolve();
        }
      });
    });
  }

  writevSync(bufs: Uint8Array[], position: number): void {
    let pos = position;
    for (const b of bufs) {
      let done = 0;
      while (done < b.length) done += fs.writeSync(this.fd, b, done, b.length - done, pos + done);
      pos += b.length;
    }
  }

  truncate(size: number): void {
    fs.ftruncateSync(this.fd, size);
  }

  /** fsync on the pool: it waits for the disk. */
  sync(): Promise<void> {
    return new Promise((resolve, reject) => fs.fsync(this.fd, (err) => (err ? reject(err) : resolve())));
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

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}
