/**
 * Pull-style reader of messages from a byte source. Reads the next chunk only when every
 * message decoded so far has been taken, so a slow consumer applies backpressure to the
 * source instead of queueing without bound.
 */
import { ProtocolError } from '../errors.js';
import { FrameDecoder } from './frame_decoder.js';
import type { Message } from './messages.js';

export class MessageReader {
  private readonly queue: Message[] = [];
  private head = 0;
  private readonly decoder = new FrameDecoder((m) => this.queue.push(m));
  private readonly source: AsyncIterator<Uint8Array>;
  private ended = false;
  /** A decode failure found after some good frames of the same chunk: raised once those are taken. */
  private failure: Error | null = null;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.source = source[Symbol.asyncIterator]();
  }

  /** Messages already decoded and waiting: a server flushes its replies when this is 0. */
  get buffered(): number {
    return this.queue.length - this.head;
  }

  /** The next message, or null at a clean end of stream (EOF between frames). */
  async next(): Promise<Message | null> {
    while (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
      if (this.failure) throw this.failure;
      if (this.ended) return null;
      const r = await this.source.next();
      if (r.done) {
        this.ended = true;
        this.decoder.end();
        return null;
      }
      try {
        this.decoder.push(r.value);
      } catch (err) {
        this.failure = err as Error;
        this.ended = true;
      }
    }
    const m = this.queue[this.head];
    this.queue[this.head++] = undefined as unknown as Message;
    return m;
  }

  /** Puts `m` back so the next `next()` returns it (a request read while draining a failed Put). */
  unread(m: Message): void {
    if (this.head > 0) this.queue[--this.head] = m;
    else this.queue.unshift(m);
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
    await this.source.return?.();
  }
}
