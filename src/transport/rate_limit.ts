/**
 * `--bwlimit`: one limit for the whole process, shared by every connection and plane, so the
 * total is what the user asked for (as rsync, rclone and mscp mean it); a bucket per direction
 * (as rclone's), so an upload's small replies never queue behind its own data.
 * Writes are cut into small pieces that each wait for their tokens, and reads are held back
 * until theirs are there (the peer then waits on the full pipe and ssh window): the rate on the
 * wire is steady within ~50 ms rather than a burst per 4 MiB frame and a pause.
 */
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ByteChannel } from './channel.js';

/** Piece of a write that waits for its own tokens. */
const PIECE = 64 * 1024;

export class TokenBucket {
  private tokens: number;
  private last = performance.now();
  private readonly burst: number;
  private queue: Promise<void> = Promise.resolve();

  /** `bytesPerSecond` over all users of this limiter together. */
  constructor(readonly bytesPerSecond: number) {
    this.burst = Math.max(PIECE, bytesPerSecond / 20);
    this.tokens = this.burst;
  }

  /** Resolves when `n` bytes may go; takers are served in order. */
  take(n: number): Promise<void> {
    const turn = this.queue.then(async () => {
      const now = performance.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.bytesPerSecond) / 1000);
      this.last = now;
      this.tokens -= n;
      if (this.tokens < 0) await sleep((-this.tokens * 1000) / this.bytesPerSecond);
    });
    this.queue = turn;
    return turn;
  }
}

export class RateLimiter {
  /** What we send, and what we receive. */
  readonly out: TokenBucket;
  readonly in: TokenBucket;
  constructor(readonly bytesPerSecond: number) {
    this.out = new TokenBucket(bytesPerSecond);
    this.in = new TokenBucket(bytesPerSecond);
  }
}

/**
 * Parses a rate as rsync and rclone write it: a number of KiB/s, or with a suffix B, K, M, G
 * (binary units; `8M` is 8 MiB/s), optionally followed by `/s` or `iB`.
 */
export function parseRate(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?(?:\/s)?$/i.exec(text.trim());
  if (!m) return null;
  const unit = { '': 1024, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2].toLowerCase()] ?? 0;
  const rate = Number(m[1]) * unit;
  return rate >= 1 ? Math.floor(rate) : null;
}

/**
 * Writes `chunk` in pieces, each after its tokens from `bucket`; `write` resolves once the
 * stream has taken a piece (the caller may then reuse the buffer it was a view of).
 */
export async function writeLimited(
  bucket: TokenBucket,
  chunk: Uint8Array,
  write: (piece: Uint8Array) => Promise<void>,
): Promise<void> {
  for (let o = 0; o < chunk.length; o += PIECE) {
    const piece = chunk.subarray(o, o + PIECE);
    await bucket.take(piece.length);
    await write(piece);
  }
}

/** `channel` with both directions drawing from `limiter`. */
export function limitChannel(channel: ByteChannel, limiter: RateLimiter): ByteChannel {
  const inner = channel.writable;
  const writable = new Writable({
    highWaterMark: PIECE,
    write(chunk: Buffer, _enc, done) {
      // Done only once the stream has taken the bytes (frame_sink.ts reuses the buffer then).
      writeLimited(
        limiter.out,
        chunk,
        (piece) =>
          new Promise<void>((resolve, reject) => inner.write(piece, (e) => (e ? reject(e) : resolve()))),
      ).then(() => done(), done);
    },
    final(done) {
      inner.end(done);
    },
    destroy(err, done) {
      inner.destroy(err ?? undefined);
      done(err);
    },
  });
  inner.on('error', (err) => writable.destroy(err));
  async function* readable(): AsyncGenerator<Uint8Array> {
    for await (const chunk of channel.readable) {
      await limiter.in.take(chunk.length);
      yield chunk;
    }
  }
  return { ...channel, readable: readable(), writable };
}
