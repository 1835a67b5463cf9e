/**
 * Reads of a pipe or socket into reused memory. A Node stream allocates a new buffer for every
 * read, and collecting them costs more CPU than the read itself (a 2 GiB pipe read: 1.4-1.7 s
 * through 'data' events, 1.1 s with `onread` into reused memory; fresh buffers per `onread`
 * gain nothing). Reused memory needs to know when every view of it is done with:
 *
 * - each read lands in a slab taken from the pool; the reader holds it while it decodes;
 * - a decoded message that keeps a view of the slab (a Data piece on its way to disk) holds it
 *   too, until its consumer calls `release(view)` once its bytes are written and hashed;
 * - a view nobody releases (a consumer that does not know about the pool, a message dropped on
 *   a failure, a view kept for later) keeps its slab out of the pool for good: the garbage
 *   collector takes it, as it takes every read buffer without a pool. Forgetting a release
 *   costs speed, never bytes; only a release before the last use could (see the poison mode).
 *
 * `BCMR_SLAB_POISON=1` fills a slab as it returns to the pool, so a view used after its
 * release reads garbage and the copy's BLAKE3 check fails (the tests run this way).
 */
import net from 'node:net';

/**
 * One read's room: what Node itself reads at a time. A pipe delivers at most 64 KiB a read;
 * larger slabs would sit half empty and double the memory the read-ahead holds.
 */
export const SLAB_BYTES = 64 << 10;

/** Free slabs kept for reuse, at most (8 MiB; the reader's read-ahead is bounded separately). */
const MAX_FREE = 128;

export class SlabPool {
  private readonly free: ArrayBuffer[] = [];
  /** Holds per slab in use: the read's own, and one per tracked view. */
  private readonly holds = new Map<ArrayBuffer, number>();
  /** Views whose release is awaited, with their slab. */
  private readonly views = new WeakMap<Uint8Array, ArrayBuffer>();
  /**
   * Each read's chunk as handed out, until `readDone`: a wrapper that re-slices chunks (its
   * pieces are not these objects) cannot end a read's hold twice; the slab is then lost.
   */
  private readonly reads = new WeakSet<Uint8Array>();
  /** Slabs with a view that will never be released: not returned to the pool. */
  private readonly lost = new WeakSet<ArrayBuffer>();
  private readonly poison = process.env.BCMR_SLAB_POISON === '1';
  /** Counters for tests and traces: slabs made, and taken again from the pool. */
  readonly stats = { made: 0, reused: 0 };

  /** A slab for the next read, held once (for the read). */
  take(): Buffer {
    let ab = this.free.pop();
    if (ab) this.stats.reused++;
    else {
      ab = new ArrayBuffer(SLAB_BYTES);
      this.stats.made++;
    }
    this.holds.set(ab, 1);
    return Buffer.from(ab);
  }

  /** `view` (of a read chunk) lives on in a message: its slab stays out until `release(view)`. */
  track(view: Uint8Array): void {
    const ab = view.buffer as ArrayBuffer;
    const n = this.holds.get(ab);
    if (n === undefined || this.views.has(view)) return;
    this.holds.set(ab, n + 1);
    this.views.set(view, ab);
  }

  /** A view of `chunk`'s slab is kept with no release to come: the slab never returns. */
  lose(chunk: Uint8Array): void {
    if (this.holds.has(chunk.buffer as ArrayBuffer)) this.lost.add(chunk.buffer as ArrayBuffer);
  }

  /** The bytes of a tracked view are used up (written, hashed). Anything else: a no-op. */
  release(view: Uint8Array): void {
    const ab = this.views.get(view);
    if (ab === undefined) return;
    this.views.delete(view);
    this.unhold(ab);
  }

  /** `n` bytes were read into `slab` (from `take`): the chunk the reader gets. */
  filled(slab: Buffer, n: number): Uint8Array {
    const chunk = slab.subarray(0, n);
    this.reads.add(chunk);
    return chunk;
  }

  /** The reader is done decoding `chunk` (its read's own hold). */
  readDone(chunk: Uint8Array): void {
    if (this.reads.delete(chunk)) this.unhold(chunk.buffer as ArrayBuffer);
  }

  private unhold(ab: ArrayBuffer): void {
    const n = (this.holds.get(ab) ?? 1) - 1;
    if (n > 0) {
      this.holds.set(ab, n);
      return;
    }
    this.holds.delete(ab);
    if (this.lost.has(ab) || this.free.length >= MAX_FREE) return;
    if (this.poison) new Uint8Array(ab).fill(0xa5);
    this.free.push(ab);
  }
}

/**
 * The bytes of the pipe or socket at `fd` as an async iterable of chunks read into `pool`'s
 * slabs; reading pauses while `highWater` chunks wait for the consumer.
 */
export function pooledInput(fd: number, pool: SlabPool, highWater = 16): AsyncIterable<Uint8Array> {
  const queue: Uint8Array[] = [];
  let head = 0;
  let ended = false;
  let failure: Error | null = null;
  let waiter: (() => void) | null = null;
  /** The callback returned false: the socket reads again only when resumed. */
  let stopped = false;
  const resume = () => {
    if (stopped && queue.length - head < highWater) {
      stopped = false;
      socket.resume();
    }
  };
  const wake = () => {
    const w = waiter;
    waiter = null;
    w?.();
  };
  const socket = new net.Socket({
    fd,
    readable: true,
    writable: false,
    onread: {
      buffer: () => pool.take(),
      callback: (n: number, buf: Uint8Array) => {
        queue.push(pool.filled(buf as Buffer, n));
        wake();
        // false stops reading until the consumer has caught up and resumes it (next()).
        stopped = queue.length - head >= highWater;
        return !stopped;
      },
    },
  });
  socket.on('end', () => {
    ended = true;
    wake();
  });
  socket.on('error', (err) => {
    failure = err;
    wake();
  });
  socket.on('close', () => {
    ended = true;
    wake();
  });
  return {
    [Symbol.asyncIterator]: () => ({
      async next(): Promise<IteratorResult<Uint8Array>> {
        for (;;) {
          if (head < queue.length) {
            const chunk = queue[head];
            queue[head++] = undefined as unknown as Uint8Array;
            if (head === queue.length) {
              queue.length = 0;
              head = 0;
            }
            resume();
            return { value: chunk, done: false };
          }
          if (failure) throw failure;
          if (ended) return { value: undefined, done: true };
          resume();
          await new Promise<void>((resolve) => {
            waiter = resolve;
          });
        }
      },
      async return(): Promise<IteratorResult<Uint8Array>> {
        ended = true;
        socket.destroy();
        return { value: undefined, done: true };
      },
    }),
  };
}
