/**
 * `--to DST` (repeatable) on copy, sync and move: the same sources to every destination at
 * once, one job per destination with connections of its own, so a slow or failed host holds
 * up no other. Local sources are read by every job at once: after the first read they come
 * from the page cache, so the disk is read once. Events carry `to`; each destination ends in
 * a summary line of its own. `move --to` removes the sources only when every destination has
 * a verified copy.
 */

import { describeError, ExitCode, exitCodeFor, InterruptedError } from '../errors.js';
import type { CopyOptions } from '../transfer/copy.js';
import type { CopyOutcome, CopyReporter, FileEvent } from '../transfer/events.js';
import { formatBytes } from './format.js';
import { fileJson } from './output.js';

export interface FanOutOutput {
  json: boolean;
  verbose: boolean;
  quiet: boolean;
}

type Op = 'copy' | 'move' | 'sync';

export async function fanOut(
  op: Op,
  sources: readonly string[],
  dests: readonly string[],
  opts: CopyOptions,
  out: FanOutOutput,
  signal: AbortSignal,
): Promise<number> {
  const emit = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const say = (s: string) => process.stderr.write(`bcmr: ${s}\n`);
  const { runCopy } = await import('../transfer/copy.js');
  const t0 = performance.now();
  const results = await Promise.all(
    dests.map(async (to) => {
      const rep = taggedReporter(to, out, emit, say);
      try {
        // Each job its own options: a job settles its own conflicts (-f asked on a TTY).
        const o: CopyOptions = {
          ...opts,
          ...(op === 'move' ? { verify: true, preserve: true, recursive: true } : {}),
        };
        const outcome = await runCopy(sources, to, o, rep, signal);
        if (signal.aborted) throw new InterruptedError();
        const code = outcome.failed > 0 ? ExitCode.failed : ExitCode.ok;
        return { to, outcome, code, error: null as string | null, secs: (performance.now() - t0) / 1000 };
      } catch (err) {
        const e = signal.aborted ? new InterruptedError() : err;
        return {
          to,
          outcome: null,
          code: exitCodeFor(e),
          error: describeError(e),
          secs: (performance.now() - t0) / 1000,
        };
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  for (const r of results) summarize(r, out, emit, say, op);
  let code = Math.max(...results.map((r) => r.code));
  if (op === 'move' && !opts.dryRun) {
    if (code === ExitCode.ok) code = await removeSources(sources, opts, out, emit, say, signal);
    else say(`sources kept: not every destination has a verified copy`);
  }
  if (out.json)
    emit({ event: 'end', exit: code, destinations: dests.length, seconds: Math.round(secs * 1000) / 1000 });
  return code;
}

function taggedReporter(
  to: string,
  out: FanOutOutput,
  emit: (o: Record<string, unknown>) => void,
  say: (s: string) => void,
): CopyReporter {
  return {
    start: (e) => out.json && emit({ event: 'start', to, ...e }),
    bytes() {},
    file(e: FileEvent) {
      if (out.json) emit({ ...fileJson(e), to });
      if (e.outcome === 'failed') say(`${to}: ${e.error}`);
      else if (e.outcome === 'ok' && out.verbose && !out.json)
        process.stdout.write(`${e.source} -> ${to}: ${e.dest}\n`);
    },
    notice: (msg) => !out.quiet && say(`${to}: ${msg}`),
    planned: (line) =>
      out.json ? emit({ event: 'plan', to, line }) : process.stdout.write(`${to}: ${line}\n`),
    deleted: (p) =>
      out.json
        ? emit({ event: 'delete', to, path: p })
        : out.verbose && process.stdout.write(`${to}: deleted ${p}\n`),
  };
}

function summarize(
  r: { to: string; outcome: CopyOutcome | null; code: number; error: string | null; secs: number },
  out: FanOutOutput,
  emit: (o: Record<string, unknown>) => void,
  say: (s: string) => void,
  op: Op,
): void {
  const o = r.outcome ?? { files: 0, failed: 0, bytes: 0, dirs: 0 };
  if (out.json) {
    emit({
      event: 'summary',
      to: r.to,
      seconds: Math.round(r.secs * 1000) / 1000,
      files: o.files,
      failed: o.failed,
      dirs: o.dirs,
      bytes: o.bytes,
      exit: r.code,
      ...(r.error ? { error: r.error } : {}),
    });
    return;
  }
  if (r.error) {
    say(`${r.to}: ${r.error}`);
    return;
  }
  if (out.quiet) return;
  const verb = op === 'sync' ? 'synced' : 'copied';
  const failed = o.failed > 0 ? `, ${o.failed} failed` : '';
  process.stderr.write(
    `${r.to}: ${verb} ${o.files} file(s), ${formatBytes(o.bytes)} in ${r.secs.toFixed(1)} s${failed}\n`,
  );
}

/** move --to, once every destination has its verified copy: the sources go, as `bcmr remove -r`. */
async function removeSources(
  sources: readonly string[],
  opts: CopyOptions,
  out: FanOutOutput,
  emit: (o: Record<string, unknown>) => void,
  say: (s: string) => void,
  signal: AbortSignal,
): Promise<number> {
  const { runRemove } = await import('../transfer/remove.js');
  const r = await runRemove(
    sources,
    { ...opts, recursive: true, force: false, emptyDirs: false, dryRun: false, exclude: opts.exclude },
    {
      removed: (p) =>
        out.json ? emit({ event: 'delete', path: p }) : out.verbose && process.stdout.write(`removed ${p}\n`),
      failed: (p, err) => say(`${p}: ${err.message}`),
      planned() {},
      notice: (msg) => !out.quiet && say(msg),
    },
    signal,
  );
  return r.failed > 0 ? ExitCode.failed : ExitCode.ok;
}
