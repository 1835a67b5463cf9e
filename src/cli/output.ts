/**
 * What a copy prints. Three independent parts, all fed by CopyReporter events:
 * - errors: always, one line each on stderr;
 * - progress (progress.ts): a drawn block on a terminal (stderr), a plain line every few
 *   seconds, or nothing;
 * - `--json`: NDJSON on stdout, one `file` event per file and a final `summary`
 *   (schema in the README); otherwise `-v` lists copied files on stdout.
 */
import type { CopyOutcome, CopyReporter, FileEvent, StartEvent } from '../transfer/events.js';
import { formatBytes } from './format.js';
import { PLAIN_PERIOD_MS, ProgressView } from './progress.js';

export type ProgressMode = 'auto' | 'inline' | 'plain' | 'off';

export interface OutputOptions {
  /** The summary line's first word (Copied, Moved). */
  verb?: string;
  json: boolean;
  verbose: boolean;
  quiet: boolean;
  progress: ProgressMode;
}

export class CopyOutput implements CopyReporter {
  private start0 = performance.now();
  private timer: NodeJS.Timeout | null = null;
  private view: ProgressView | null = null;
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
    this.start0 = performance.now();
    if (this.o.json) this.emit({ event: 'start', ...e });
    if (this.mode !== 'off') {
      const live = this.mode === 'inline';
      this.view = new ProgressView(this.err, live, e);
      this.timer = setInterval(() => this.view?.render(), live ? 200 : PLAIN_PERIOD_MS);
      this.timer.unref();
      if (live) this.view.render();
    }
  }

  bytes(n: number, lane?: number): void {
    this.view?.bytes(n, lane);
  }

  transferred(): void {
    this.view?.fileDone();
  }

  file(e: FileEvent): void {
    this.view?.current(e.dest || e.source);
    if (this.o.json) {
      this.emit(fileJson(e));
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
    if (this.mode === 'plain') this.view?.render();
    this.view?.clear();
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

  private println(stream: NodeJS.WriteStream, s: string): void {
    if (stream === this.err) this.view?.clear();
    stream.write(`${s}\n`);
  }

  private emit(obj: Record<string, unknown>): void {
    this.out.write(`${JSON.stringify(obj)}\n`);
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** A `file` event as `--json` writes it (README schema); fan-out adds `to`. */
export function fileJson(e: FileEvent): Record<string, unknown> {
  return {
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
  };
}
