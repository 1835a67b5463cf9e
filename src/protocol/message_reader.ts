/**
 * Pull-style reader of messages from a byte source, with bounded read-ahead: a background
 * pump keeps reading while less than READ_AHEAD bytes of decoded messages wait, so the
 * source (a pipe from ssh) keeps flowing while the consumer writes a block to disk, and a slow
 * consumer still applies backpressure instead of queueing without bound.
 */
import { ProtocolError } from '../errors.js';
import { FrameDecoder } from './frame_decoder.js';
import type { Message } from './messages.js';

/** Decoded bytes held ahead of the consumer, at most (plus one chunk). */
export const READ_AHEAD = 16 << 20;

/**
 * Read-ahead is counted in the stream bytes each message took (its whole frame), not a nominal
 * size: a peer that never reads replies can otherwise queue requests with 1 MiB paths at 64
 * "bytes" each and grow us without bound.
 */

export class MessageReader {
  private readonly queue: Message[] = [];
  /** Stream bytes of each queued message, parallel to `queue`. */
  private readonly weights: number[] = [];
  private head = 0;
  /** The message `next()` returned last and its weight, for `unread`. */
  private last: Message | null = null;
  private lastWeight = 0;
  private queuedBytes = 0;
  private readonly decoder: FrameDecoder;
  private readonly source: AsyncIterator<Uint8Array>;
  private ended = false;
  /** A decode failure found after some good frames: raised once those are taken. */
  private failure: Error | null = null;
  private pumping = false;
  private waiter: (() => void) | null = null;

  /** `splitData`: raw Data frames may arrive as several Data messages (see FrameDecoder). */
  constructor(source: AsyncIterable<Uint8Array>, opts: { splitData?: boolean } = {}) {
    this.source = source[Symbol.asyncIterator]();
    this.decoder = new FrameDecoder((m, bytes) => {
      this.queue.push(m);
      this.weights.push(bytes);
      this.queuedBytes += bytes;
    }, opts.splitData ?? false);
  }

  /** Messages already decoded and waiting: a server flushes its replies when this is 0. */
  get buffered(): number {
    return this.queue.length - this.head;
  }

  /** The next message, or null at a clean end of stream (EOF between frames). */
  async next(): Promise<Message | null> {
    for (;;) {
      if (this.head < this.queue.length) {
        const m = this.queue[this.head];
        const w = this.weights[this.head];
        this.queue[this.head++] = undefined as unknown as Message;
        this.queuedBytes -= w;
        this.last = m;
        this.lastWeight = w;
        this.pump();
        return m;
      }
      this.queue.length = 0;
      this.weights.length = 0;
      this.head = 0;
      if (this.failure) throw this.failure;
      if (this.ended) return null;
      this.pump();
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  /** Puts `m` back so the next `next()` returns it (a request read while draining a failed Put). */
  unread(m: Message): void {
    const w = m === this.last ? this.lastWeight : 64;
    if (this.head > 0) {
      this.queue[--this.head] = m;
      this.weights[this.head] = w;
    } else {
      this.queue.unshift(m);
      this.weights.unshift(w);
    }
    this.queuedBytes += w;
  }

  /** Like `next()` but EOF is an error: used inside a multi-frame exchange. */
  async expect(context: string): Promise<Message> {
    const m = await this.next();
    if (m === null) throw new ProtocolError(`Stream ended during ${context}`);
    return m;
  }

  /** Stops the source (e.g. closes the underlying stream's iterator). */
  async cancel(): Promise<void> {
    this.ended = true;
    this.wake();
    await this.source.return?.();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Reads chunks in the background until enough is decoded ahead, the end, or a failure. */
  private pump(): void {
    if (this.pumping || this.ended || this.failure || this.queuedBytes >= READ_AHEAD) return;
    this.pumping = true;
    void (async () => {
      try {
        while (!this.ended && !this.failure && this.queuedBytes < READ_AHEAD) {
          const r = await this.source.next();
          if (this.ended) break;
          if (r.done) {
            this.ended = true;
            this.decoder.end();
            break;
          }
          this.decoder.push(r.value);
          this.wake();
        }
      } catch (err) {
        this.failure = err as Error;
        this.ended = true;
      } finally {
        this.pumping = false;
        this.wake();
      }
    })();
  }
}
