/**
 * Encodes messages into a gathering ByteWriter and writes them to a stream in one corked
 * burst per flush. `flush()` resolves once the stream has written the bytes, which is the
 * moment a caller may reuse a buffer whose views were sent by reference. That assumes the
 * stream copies on write, as pipes and sockets do (the kernel takes the bytes); an in-memory
 * stream must copy too.
 */
import type { Writable } from 'node:stream';
import { type Codec, encodeBlock } from '../codec/block.js';
import { LevelControl } from '../codec/level_control.js';
import { ConnectionClosedError } from '../errors.js';
import { ByteWriter, REF_THRESHOLD } from '../protocol/byte_writer.js';
import { encodeMessage } from '../protocol/codec.js';
import type { Message } from '../protocol/messages.js';
import { RELEASED, type Release } from '../util/file_blocks.js';
import { trace } from '../util/trace.js';

/** Buffered bytes above which `sendAndMaybeFlush` writes without waiting for the caller. */
const AUTO_FLUSH_BYTES = 1 << 20;

export class FrameSink {
  private readonly w = new ByteWriter();
  private failure: Error | null = null;
  private last: Promise<void> = Promise.resolve();
  /** Called whenever the stream has taken a write: the peer is reading (idle watchdogs). */
  onWritten: (() => void) | null = null;
  /**
   * Milliseconds the writes waited for the stream to take them (a full pipe or socket: the
   * wire or the peer is slower than we are), overlapping writes counted once.
   */
  private waitedMs = 0;
  private lastDoneAt = 0;
  private readonly levels = new LevelControl();

  constructor(private readonly out: Writable) {
    out.on('error', (err) => {
      this.failure ??= new ConnectionClosedError(`Connection write failed: ${err.message}`, { cause: err });
    });
  }

  /** Bytes encoded but not yet handed to the stream. */
  get pending(): number {
    return this.w.pending;
  }

  /** Encodes `m` (large payloads by reference). Nothing is written until `flush()`. */
  send(m: Message): void {
    encodeMessage(this.w, m);
  }

  /**
   * Writes everything sent so far; resolves when the stream has written it. The promise may
   * be awaited only later (a block's release is awaited two blocks on): it is marked handled
   * here, or a failure meanwhile (EPIPE when the peer died) would be an unhandled rejection
   * and crash the process; whoever awaits it still gets the error.
   */
  flush(): Promise<void> {
    const p = this.write();
    p.catch(() => {});
    return p;
  }

  private write(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const parts = this.w.take();
    const retired = this.w.takeRetired();
    if (parts.length === 0) return this.last;
    const out = this.out;
    if (out.destroyed || out.writableEnded) {
      return Promise.reject(new ConnectionClosedError('Connection closed while writing'));
    }
    const issuedAt = performance.now();
    this.last = new Promise<void>((resolve, reject) => {
      out.cork();
      for (let i = 0; i < parts.length - 1; i++) out.write(parts[i]);
      out.write(parts[parts.length - 1], (err) => {
        if (err) reject(this.failure ?? new ConnectionClosedError(`Connection write failed: ${err.message}`));
        else {
          const doneAt = performance.now();
          this.waitedMs += Math.max(0, doneAt - Math.max(issuedAt, this.lastDoneAt));
          this.lastDoneAt = doneAt;
          // Streams call back in order: every view of the retired slabs is written by now.
          if (retired.length > 0) this.w.recycle(retired);
          this.onWritten?.();
          resolve();
        }
      });
      out.uncork();
    });
    return this.last;
  }

  /** The zstd level the next block would get (level_control.ts). */
  get zstdLevel(): number {
    return this.levels.level;
  }

  /**
   * Sends one block of file content as a data frame (zstd at the level the wire calls for:
   * level_control.ts). A raw frame sent by reference is released
   * when the stream has written it; a copied or compressed one at once (after backpressure).
   */
  async sendBlock(block: Uint8Array, codec: Codec): Promise<Release> {
    let level: number | undefined;
    if (codec === 'zstd') {
      const was = this.levels.level;
      level = this.levels.next(this.waitedMs);
      if (level !== was) trace(`zstd level ${was} -> ${level}`);
    }
    const frame = encodeBlock(block, codec, level);
    this.send(frame);
    if (frame.type === 'Data' && block.length >= REF_THRESHOLD) return { released: this.flush() };
    await this.flushIfFull();
    return RELEASED;
  }

  /** Flushes when enough is buffered to be worth a write on its own. */
  async flushIfFull(): Promise<void> {
    if (this.w.pending >= AUTO_FLUSH_BYTES) await this.flush();
  }

  /** Ends the stream after flushing. */
  async end(): Promise<void> {
    try {
      await this.flush();
    } finally {
      this.out.end();
    }
  }
}
