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

/**
 * Memory the source's chunks live in, reused once nothing refers to it (transport/slab_pool.ts
 * is one). The reader tells it which decoded messages keep views of a chunk.
 */
export interface ChunkMemory {
  /** `view` lives on in a message until `release(view)`. */
  track(view: Uint8Array): void;
  /** A view of `chunk` is kept with no release to come. */
  lose(chunk: Uint8Array): void;
  release(view: Uint8Array): void;
  /** The reader has decoded all of `chunk`. */
  readDone(chunk: Uint8Array): void;
}

/**
 * What each message keeps of the chunk it was decoded from: the view of its bytes that a
 * consumer releases once used (file data), views kept with no release to come, or nothing
 * (numbers, strings: copies). Exhaustive, so a new message must say.
 */
const VIEWS: { [T in Message['type']]: 'released' | 'kept' | 'none' } = {
  Hello: 'none',
  List: 'none',
  Stat: 'none',
  Hash: 'none',
  Get: 'none',
  Put: 'none',
  Mkdir: 'none',
  Resume: 'none',
  Done: 'none',
  HaveBlocks: 'kept',
  OpenDirectChannel: 'none',
  AuthHello: 'kept',
  PutChunked: 'none',
  GetChunked: 'none',
  Truncate: 'none',
  Welcome: 'none',
  Ok: 'none',
  Error: 'none',
  Data: 'released',
  StatResponse: 'none',
  HashResponse: 'none',
  ListResponse: 'none',
  ResumeResponse: 'none',
  DataCompressed: 'released',
  MissingBlocks: 'kept',
  DirectChannelReady: 'kept',
  AuthChallenge: 'kept',
};

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
  private readonly memory: ChunkMemory | null;
  /** The chunk being decoded, while its memory is tracked. */
  private chunk: Uint8Array | null = null;

  /**
   * `splitData`: raw Data frames may arrive as several Data messages (see FrameDecoder).
   * `memory`: the source's chunks are reused memory; Data and DataCompressed views must be
   * given back with `release` once used.
   */
  constructor(source: AsyncIterable<Uint8Array>, opts: { splitData?: boolean; memory?: ChunkMemory } = {}) {
    this.source = source[Symbol.asyncIterator]();
    this.memory = opts.memory ?? null;
    this.decoder = new FrameDecoder((m, bytes) => {
      if (this.memory && this.chunk) this.hold(m, this.memory, this.chunk);
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

  /**
   * The bytes of a Data piece or a DataCompressed payload are used up (written, hashed,
   * decompressed): its memory may be read into again. Without chunk memory, a no-op.
   */
  release(view: Uint8Array): void {
    this.memory?.release(view);
  }

  private hold(m: Message, memory: ChunkMemory, chunk: Uint8Array): void {
    const views = VIEWS[m.type];
    if (views === 'none') return;
    if (views === 'kept') memory.lose(chunk);
    else if (m.type === 'Data') memory.track(m.data);
    else if (m.type === 'DataCompressed') memory.track(m.payload);
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
          this.chunk = r.value;
          try {
            this.decoder.push(r.value);
          } finally {
            this.chunk = null;
            this.memory?.readDone(r.value);
          }
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
