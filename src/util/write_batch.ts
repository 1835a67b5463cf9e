/** Gathered writes of received file pieces. */
import { type FdFile, SYNC_IO_MAX } from './fd_file.js';

/**
 * Gathers received pieces (views of socket reads, still in cache) into ~1 MiB and writes each
 * batch with one pwritev on the pool while the next batch is read: no assembly copy, and the
 * pipe from ssh keeps draining during the disk write. A small remainder with nothing in
 * flight (all of a small file) is written synchronously: a pool round trip per small file
 * would cost more than the write.
 */
export class WriteBatch {
  private static readonly BYTES = 1 << 20;
  private parts: Uint8Array[] = [];
  private bytes = 0;
  private inFlight: Promise<void> | null = null;

  /**
   * `release`: told of each piece once its write has completed (or failed), when its memory
   * may be read into again (see MessageReader.release).
   */
  constructor(
    private readonly fh: FdFile,
    private position: number,
    private readonly release?: (piece: Uint8Array) => void,
  ) {}

  /**
   * Runs `fill` with a batch writing from `position`, then writes the rest and waits for it.
   * If anything fails, what was gathered is still written (it arrived, in order: a failed
   * upload's file keeps every block it received, for the store to keep) and waited for (a
   * write's own error is the lesser one), and the failure is rethrown: no write outlives the
   * call.
   */
  static async run<T>(
    fh: FdFile,
    position: number,
    fill: (batch: WriteBatch) => Promise<T>,
    release?: (piece: Uint8Array) => void,
  ): Promise<T> {
    const batch = new WriteBatch(fh, position, release);
    try {
      const result = await fill(batch);
      await batch.flush();
      await batch.settle();
      return result;
    } catch (err) {
      await batch.flush().catch(() => {});
      await batch.settle().catch(() => {});
      throw err;
    }
  }

  async add(piece: Uint8Array): Promise<void> {
    this.parts.push(piece);
    this.bytes += piece.length;
    if (this.bytes >= WriteBatch.BYTES) await this.flush();
  }

  /** Starts writing what is gathered (after the previous write completes). */
  async flush(): Promise<void> {
    if (this.inFlight) {
      const prev = this.inFlight;
      this.inFlight = null;
      await prev;
    }
    if (this.bytes === 0) return;
    const parts = this.parts;
    const at = this.position;
    const sync = this.bytes <= SYNC_IO_MAX;
    this.position += this.bytes;
    this.parts = [];
    this.bytes = 0;
    const release = this.release;
    if (sync) {
      try {
        this.fh.writevSync(parts, at);
      } finally {
        if (release) for (const p of parts) release(p);
      }
    } else {
      const write = this.fh.writev(parts, at);
      this.inFlight = release
        ? write.finally(() => {
            for (const p of parts) release(p);
          })
        : write;
      // Its failure is reported by the next flush() or settle(); a transfer that fails
      // elsewhere first never asks, and that must not be an unhandled rejection.
      this.inFlight.catch(() => {});
    }
  }

  /** Waits for the last write; its failure is thrown. */
  async settle(): Promise<void> {
    const last = this.inFlight;
    this.inFlight = null;
    if (last) await last;
  }
}
