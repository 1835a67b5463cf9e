/**
 * The progress of a copy on stderr: on a terminal a drawn block, redrawn in place five times a
 * second (a bar with bytes, files finished, rate and ETA; with several connections a lane
 * each; the file being written); for logs (`--progress plain`) one line every few seconds.
 * Rates are over the last few seconds, so the ETA follows what the transfer does now.
 */
import { formatBytes, formatDuration } from './format.js';

/** Rate over a sliding window of recent samples. */
class RateMeter {
  private readonly samples: { t: number; bytes: number }[] = [];
  constructor(private readonly windowMs = 5000) {}

  sample(t: number, bytes: number): void {
    this.samples.push({ t, bytes });
    while (this.samples.length > 2 && t - this.samples[0].t > this.windowMs) this.samples.shift();
  }

  /** Bytes per second, or 0 before two samples. */
  rate(): number {
    if (this.samples.length < 2) return 0;
    const a = this.samples[0];
    const b = this.samples[this.samples.length - 1];
    return b.t > a.t ? ((b.bytes - a.bytes) * 1000) / (b.t - a.t) : 0;
  }
}

export interface ProgressTotals {
  bytes: number;
  files: number;
  connections: number;
}

const BAR = { done: '█', todo: '░' };
/** Plain mode: a line this often. */
export const PLAIN_PERIOD_MS = 5000;

export class ProgressView {
  private doneBytes = 0;
  private doneFiles = 0;
  private readonly lanes: { bytes: number; meter: RateMeter }[] = [];
  private readonly meter = new RateMeter();
  private name = '';
  /** Lines of the block now on screen (0: nothing drawn). */
  private drawn = 0;

  constructor(
    private readonly err: NodeJS.WriteStream,
    private readonly live: boolean,
    private readonly totals: ProgressTotals,
  ) {
    if (totals.connections > 1)
      for (let i = 0; i < totals.connections; i++) this.lanes.push({ bytes: 0, meter: new RateMeter() });
  }

  bytes(n: number, lane?: number): void {
    this.doneBytes += n;
    if (lane === undefined || this.totals.connections < 2) return;
    while (this.lanes.length <= lane) this.lanes.push({ bytes: 0, meter: new RateMeter() });
    this.lanes[lane].bytes += n;
  }

  fileDone(): void {
    this.doneFiles++;
  }

  current(name: string): void {
    this.name = name;
  }

  /** Draws the block again (live) or prints one line (plain). */
  render(): void {
    const now = performance.now();
    this.meter.sample(now, this.doneBytes);
    for (const l of this.lanes) l.meter.sample(now, l.bytes);
    const t = this.totals;
    const rate = this.meter.rate();
    const left = Math.max(0, t.bytes - this.doneBytes);
    const eta = rate > 0 ? left / rate : left === 0 ? 0 : Number.POSITIVE_INFINITY;
    const frac = t.bytes > 0 ? Math.min(1, this.doneBytes / t.bytes) : 1;
    const pct = `${String(Math.floor(frac * 100)).padStart(3)}%`;
    const figures = `${formatBytes(this.doneBytes)} / ${formatBytes(t.bytes)}  ${formatBytes(rate)}/s  ETA ${formatDuration(eta)}  ${this.doneFiles}/${t.files} files`;
    if (!this.live) {
      this.err.write(`${pct} ${figures}\n`);
      return;
    }
    const width = Math.max(40, (this.err.columns ?? 80) - 1);
    const barWidth = Math.max(10, Math.min(40, width - figures.length - 7));
    const lines = [`${pct} ${bar(frac, barWidth)}  ${figures}`];
    if (this.lanes.length > 1) {
      const top = Math.max(1, ...this.lanes.map((l) => l.meter.rate()));
      for (const [i, l] of this.lanes.entries()) {
        const r = l.meter.rate();
        lines.push(
          `  conn ${String(i + 1).padStart(2)} ${bar(r / top, 20)} ${formatBytes(r).padStart(10)}/s ${formatBytes(l.bytes).padStart(10)}`,
        );
      }
    }
    if (this.name) lines.push(`  ${ellipsize(this.name, width - 2)}`);
    this.draw(lines.map((l) => (l.length > width ? l.slice(0, width) : l)));
  }

  /** Removes the block, so other output starts on a clean line; the next render draws it again. */
  clear(): void {
    if (this.drawn === 0) return;
    this.err.write(`${up(this.drawn - 1)}\r\x1b[J`);
    this.drawn = 0;
  }

  private draw(lines: string[]): void {
    const back = this.drawn > 0 ? `${up(this.drawn - 1)}\r` : '';
    this.err.write(`${back}${lines.map((l) => `\x1b[2K${l}`).join('\n')}\x1b[J`);
    this.drawn = lines.length;
  }
}

function up(n: number): string {
  return n > 0 ? `\x1b[${n}A` : '';
}

function bar(frac: number, width: number): string {
  const full = Math.round(Math.max(0, Math.min(1, frac)) * width);
  return BAR.done.repeat(full) + BAR.todo.repeat(width - full);
}

function ellipsize(s: string, n: number): string {
  return s.length <= n ? s : `…${s.slice(s.length - n + 1)}`;
}
