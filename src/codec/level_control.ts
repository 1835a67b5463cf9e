/**
 * The zstd level a sender uses, chosen by what the wire does (as `zstd --adapt` does). A
 * connection's sink tells how long its writes waited on a full pipe or socket: time the bytes
 * could not leave. When writes wait most of the time, the wire (or the peer) is slower than
 * compression, and a higher level sends fewer bytes for CPU that would otherwise idle; when
 * they hardly wait, compression is what the copy waits for, and the level comes down.
 *
 * Write completions are not the wire's rate while ssh's channel window swallows the first
 * megabytes, but then nothing waits and the level stays at its base, which is today's rule;
 * once the window is full, a pipe to ssh fills exactly as fast as the link drains it.
 *
 * Measured here on text (4 MiB blocks, one core): level 3 ratio 6.3 at 318 MiB/s, 5: 6.9 at
 * 154, 7: 7.4 at 92, 9: 8.2 at 79, 12: 8.4 at 38, 15: 8.5 at 7. Past 12 a level costs far
 * more than it saves, so the ladder stops there. Decoding costs about the same at every level,
 * and any level decodes anywhere (the Rust bcmr too): the level is the sender's own business.
 */
import { ZSTD_LEVEL } from '../protocol/constants.js';

/** The levels tried, from the base up. */
export const LEVELS = [ZSTD_LEVEL, 5, 7, 9, 12] as const;
/** Time between two decisions: long enough to see the wire through ssh's buffering. */
const DECIDE_EVERY_MS = 200;
/** Waiting more than this share of the time: the wire is the bottleneck, go up a level. */
const UP_ABOVE = 0.5;
/** Waiting less than this share: compression is the bottleneck, come down a level. */
const DOWN_BELOW = 0.1;

export class LevelControl {
  private step = 0;
  private lastAt: number;
  private lastWaited = 0;

  constructor(now = performance.now()) {
    this.lastAt = now;
  }

  get level(): number {
    return LEVELS[this.step];
  }

  /**
   * The level for the next block, given the total milliseconds this connection's writes have
   * waited so far, at `now`.
   */
  next(waitedMs: number, now = performance.now()): number {
    const span = now - this.lastAt;
    if (span >= DECIDE_EVERY_MS) {
      const share = (waitedMs - this.lastWaited) / span;
      if (share > UP_ABOVE && this.step < LEVELS.length - 1) this.step++;
      else if (share < DOWN_BELOW && this.step > 0) this.step--;
      this.lastAt = now;
      this.lastWaited = waitedMs;
    }
    return LEVELS[this.step];
  }
}
