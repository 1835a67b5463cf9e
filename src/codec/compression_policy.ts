/**
 * Whether compressing blocks can pay on one connection, and at which zstd level, decided from
 * what the connection measures instead of probing every block on every link (issue 16).
 *
 * Two rates: how fast the stream takes our bytes (the wire on a real link; ssh's cipher on
 * loopback), from the sink's write completions, and how fast the codec compresses, from the
 * compress calls themselves. Sending raw costs n / wire; compressing costs n / codec of CPU
 * and n * ratio / wire on the wire, overlapped. So compression can only win when the codec
 * outruns the wire, and on a 2-core machine it takes CPU from ssh: it is used when the wire is
 * at most half as fast as the codec. A higher level pays where the wire is far slower than even
 * that level's codec (more ratio at no cost in time); the receiver does not care which level.
 * Until the first MiB after the warm-up are measured, blocks are judged as before (probe, then
 * level 3): the pipe and ssh's window swallow the first few MiB at any link speed.
 */

/** zstd levels this sender uses. */
export type ZstdLevel = 3 | 6;

export interface Choice {
  compress: boolean;
  level: ZstdLevel;
  /** Why, for --json and tests: 'warming up', 'wire 412 MB/s >= codec 310 MB/s / 2', ... */
  why: string;
}

/** Written bytes before the wire rate counts: the pipe, socket buffers and ssh window fill first. */
export const WARMUP_BYTES = 8 << 20;
/** Writes smaller than this say little about the rate (timer granularity, one syscall). */
const MIN_SAMPLE_BYTES = 256 * 1024;
/** Samples after the warm-up before the measurement is trusted. */
const MIN_SAMPLES = 4;
/** Starting guesses for the codec (MB/s on text, this class of machine), replaced by measurement. */
const DEFAULT_CODEC_BPS: Record<ZstdLevel, number> = { 3: 300e6, 6: 120e6 };

const mbps = (bps: number) => `${Math.round(bps / 1e6)} MB/s`;

/** The decision from the two rates (bytes per second); NaN wire means not measured yet. */
export function decide(wireBps: number, codecBps: Record<ZstdLevel, number>): Choice {
  if (!Number.isFinite(wireBps)) return { compress: true, level: 3, why: 'wire rate not measured yet' };
  if (wireBps * 2 > codecBps[3]) {
    return { compress: false, level: 3, why: `wire ${mbps(wireBps)} > codec ${mbps(codecBps[3])} / 2` };
  }
  if (wireBps * 4 <= codecBps[6]) {
    return {
      compress: true,
      level: 6,
      why: `wire ${mbps(wireBps)} <= level-6 codec ${mbps(codecBps[6])} / 4`,
    };
  }
  return { compress: true, level: 3, why: `wire ${mbps(wireBps)} <= codec ${mbps(codecBps[3])} / 2` };
}

/** Exponentially weighted: recent samples count most (a link can change speed). */
function ewma(prev: number, sample: number): number {
  return Number.isFinite(prev) ? prev * 0.75 + sample * 0.25 : sample;
}

export class CompressionPolicy {
  private written = 0;
  private samples = 0;
  private wireBps = Number.NaN;
  private readonly codecBps: Record<ZstdLevel, number> = { ...DEFAULT_CODEC_BPS };

  /** A write of `bytes` (with `queued` bytes ahead of it in the stream) took `ms` to complete. */
  recordWrite(bytes: number, queued: number, ms: number): void {
    this.written += bytes;
    if (this.written <= WARMUP_BYTES || bytes < MIN_SAMPLE_BYTES || ms <= 0) return;
    this.wireBps = ewma(this.wireBps, ((bytes + queued) * 1000) / ms);
    this.samples++;
  }

  /** One compress call of `bytes` at `level` took `ms`. */
  recordCodec(level: ZstdLevel, bytes: number, ms: number): void {
    if (bytes < MIN_SAMPLE_BYTES || ms <= 0) return;
    this.codecBps[level] = ewma(this.codecBps[level], (bytes * 1000) / ms);
  }

  choose(): Choice {
    return decide(this.samples >= MIN_SAMPLES ? this.wireBps : Number.NaN, this.codecBps);
  }
}
