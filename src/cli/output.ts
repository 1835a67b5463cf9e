/**
 * What a copy prints. Three independent parts, all fed by CopyReporter events:
 * - errors: always, one line each on stderr;
 * - progress: a live line on a terminal (stderr), plain periodic lines, or nothing;
 * - `--json`: NDJSON on stdout, one `file` event per file and a final `summary`
 *   (schema in the README); otherwise `-v` lists copied files on stdout.
 */
import type { CopyOutcome, CopyReporter, FileEvent, StartEvent } from '../transfer/events.js';
import { formatBytes, formatDuration } from './format.js';

export type ProgressMode = 'auto' | 'inline' | 'plain' | 'off';

export interface OutputOptions {
  /** The summary line's first word (Copied, Moved). */
  verb?: string;
  json: boolean;
  verbose: boolean;
  quiet: boolean;
  progress: ProgressMode;
}

/**
 * Rate over a sliding window of recent samples, so the ETA follows what the transfer does now
 * (big files and small files move at very different byte rates) rather than its average.
 */
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

export class CopyOutput implements CopyReporter {
  private start0 = performance.now();
  private total: StartEvent | null = null;
  private doneBytes = 0;
  private doneFiles = 0;
  private lastName = '';
  private timer: NodeJS.Timeout | null = null;
  private readonly meter = new RateMeter();
  private live = false;
  private lineShown = false;
  private readonly mode: ProgressMode;

  constructor(
    private readonly o: OutputOptions,
    private readonly out: NodeJS.WriteStream = process.stdout,
    private readonly err: NodeJS.WriteStream = process.stderr,
  ) {
    let mode = o.progress;
    if (mode === 'auto') mode = !o.json && !o.quiet && out.isTTY && err.isTTY ? 'inline' : 'off';
    this.mode = mode;
  }

  start(e: StartEvent): void {
    this.total = e;
    this.start0 = performance.now();
    if (this.o.json) this.emit({ event: 'start', ...e });
    if (this.mode !== 'off') {
      this.live = this.mode === 'inline';
      this.timer = setInterval(() => this.render(), this.live ? 200 : 1000);
      this.timer.unref();
      if (this.live) this.render();
    }
  }

  bytes(n: number): void {
    this.doneBytes += n;
  }

  file(e: FileEvent): void {
    if (e.outcome === 'ok') this.doneFiles++;
    this.lastName = e.dest || e.source;
    if (this.o.json) {
      this.emit({
        event: 'file',
        path: e.dest || e.source,
        source: e.source,
        bytes: e.bytes,
        blake3: e.blake3,
        ms: e.ms,
        outcome: e.outcome,
        ...(e.error ? { error: e.error } : {}),
        ...(e.deduped ? { deduped: e.deduped } : {}),
        ...(e.resumedFrom ? { resumedFrom: e.resumedFrom } : {}),
        ...(e.kept ? { kept: e.kept } : {}),
      });
    }
    if (e.outcome === 'failed') this.error(`${e.error}`);
    else if (e.outcome === 'interrupted') return;
    else if (this.o.verbose && !this.o.json) this.println(this.out, `${e.source} -> ${e.dest}`);
  }

  notice(msg: string): void {
    if (!this.o.quiet) this.println(this.err, `bcmr: ${msg}`);
  }

  deleted(path: string): void {
    if (this.o.json) this.emit({ event: 'delete', path });
    else if (this.o.verbose) this.println(this.out, `deleted ${path}`);
  }

  planned(line: string): void {
    if (this.o.json) this.emit({ event: 'plan', line });
    else this.println(this.out, line);
  }

  error(msg: string): void {
    this.println(this.err, `bcmr: ${msg}`);
  }

  /** Ends the display and prints the summary (JSON event; a human line on a terminal or with -v). */
  finish(outcome: CopyOutcome | null, exitCode: number, failure: string | null): void {
    if (this.timer) clearInterval(this.timer);
    // Plain mode always ends with a complete line, even for a copy shorter than its period.
    if (this.mode === 'plain' && this.total) this.render();
    this.clearLine();
    const secs = (performance.now() - this.start0) / 1000;
    const o = outcome ?? { files: 0, failed: 0, bytes: 0, dirs: 0 };
    if (this.o.json) {
      this.emit({
        event: 'summary',
        files: o.files,
        failed: o.failed,
        dirs: o.dirs,
        bytes: o.bytes,
        seconds: round3(secs),
        rate: secs > 0 ? Math.round(o.bytes / secs) : 0,
        exit: exitCode,
        ...(failure ? { error: failure } : {}),
      });
    } else if (!this.o.quiet && outcome && (this.o.verbose || this.mode !== 'off')) {
      const rate = secs > 0 ? `${formatBytes(o.bytes / secs)}/s` : '';
      const failed = o.failed > 0 ? `, ${o.failed} failed` : '';
      this.println(
        this.err,
        `${this.o.verb ?? 'Copied'} ${o.files} file(s), ${formatBytes(o.bytes)} in ${secs.toFixed(1)} s (${rate})${failed}`,
      );
    }
  }

  private render(): void {
    const t = this.total;
    if (!t) return;
    const now = performance.now();
    this.meter.sample(now, this.doneBytes);
    const rate = this.meter.rate();
    const left = Math.max(0, t.bytes - this.doneBytes);
    const eta = rate > 0 ? left / rate : Number.POSITIVE_INFINITY;
    const pct = t.bytes > 0 ? Math.floor((this.doneBytes * 100) / t.bytes) : 100;
    const line = `${String(pct).padStart(3)}% ${formatBytes(this.doneBytes)}/${formatBytes(t.bytes)} ${formatBytes(rate)}/s ETA ${formatDuration(eta)} [${this.doneFiles}/${t.files}]`;
    if (this.live) {
      const width = (this.err.columns ?? 100) - 1;
      const room = width - line.length - 1;
      const name = room > 8 ? ` ${ellipsize(this.lastName, room)}` : '';
      this.err.write(`\r\x1b[K${line}${name}`);
      this.lineShown = true;
    } else this.err.write(`${line}\n`);
  }

  private clearLine(): void {
    if (this.lineShown) this.err.write('\r\x1b[K');
    this.lineShown = false;
  }

  private println(stream: NodeJS.WriteStream, s: string): void {
    if (stream === this.err) this.clearLine();
    stream.write(`${s}\n`);
  }

  private emit(obj: Record<string, unknown>): void {
    this.out.write(`${JSON.stringify(obj)}\n`);
  }
}

function ellipsize(s: string, n: number): string {
  return s.length <= n ? s : `…${s.slice(s.length - n + 1)}`;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
