/**
 * `bcmr copy [options] SRC... DST` (alias `cp`): options to CopyOptions, Ctrl-C to an abort,
 * the outcome to an exit status (0 all copied, 1 some failed or nothing matched, 2 usage,
 * 130 interrupted).
 */
import { createInterface } from 'node:readline/promises';
import { type Command, Option } from 'commander';
import type { Compress } from '../client/pool/open_remote.js';
import { discardPrestarted } from '../client/ssh/ssh_start.js';
import { describeError, ExitCode, exitCodeFor, InterruptedError, UsageError } from '../errors.js';
import type { CopyOptions } from '../transfer/copy.js';
import type { CopyOutcome } from '../transfer/events.js';
import type { MirrorOptions } from '../transfer/mirror.js';
import { parseRate, RateLimiter } from '../transport/rate_limit.js';
import { trace } from '../util/trace.js';
import { firstRemote, prestartFirst } from './early_start.js';
import { type FilterRaw, pathFilter, withFilterOptions } from './filter_options.js';
import { CopyOutput, type ProgressMode } from './output.js';
import { type RemoteRaw, remoteOptions, withRemoteOptions } from './remote_options.js';

interface RawOptions extends RemoteRaw, FilterRaw {
  background?: boolean;
  bwlimit?: string;
  to?: string[];
  recursive?: boolean;
  preserve?: boolean;
  force?: boolean;
  dryRun?: boolean;
  verbose?: boolean;
  quiet?: boolean;
  parallel: string;
  deref: boolean;
  compress: Compress;
  fast?: boolean;
  sync?: boolean;
  verify?: boolean;
  resume?: boolean;
  progress: ProgressMode;
  direct: 'ssh' | 'direct' | 'auto';
}

export function addCopyCommand(program: Command, setExit: (code: number) => void): void {
  const copy = program
    .command('copy')
    .alias('cp')
    .description('Copy files and trees, locally or to/from HOST:PATH over ssh')
    .argument('<paths...>', 'SRC... DST; remote paths as [user@]host:path, host: for the remote home')
    .option('-r, --recursive', 'copy directories recursively')
    .option('-p, --preserve', 'keep mode and modification time')
    .option('-f, --force', 'overwrite existing files without asking')
    .option('-n, --dry-run', 'print what would be copied, copy nothing')
    .option(
      '-C, --resume',
      'continue interrupted downloads from their verified partial file (.NAME.bcmr-part)',
    );
  withTransferOptions(copy).action(async (paths: string[], raw: RawOptions, cmd: Command) => {
    const json = Boolean(cmd.optsWithGlobals().json);
    setExit(await copyMain(paths, raw, json));
  });

  const move = program
    .command('move')
    .alias('mv')
    .description(
      'Move files and trees: a rename on one filesystem; otherwise copied, verified by BLAKE3, and only then the source removed',
    )
    .argument('<paths...>', 'SRC... DST; remote paths as [user@]host:path')
    .option('-f, --force', 'overwrite existing files without asking')
    .option('-n, --dry-run', 'print what would be moved and removed, change nothing');
  withTransferOptions(move).action(async (paths: string[], raw: RawOptions, cmd: Command) => {
    const json = Boolean(cmd.optsWithGlobals().json);
    setExit(await copyMain(paths, { ...raw, recursive: true, preserve: true }, json, undefined, 'move'));
  });

  const sync = program
    .command('sync')
    .description(
      "Make DST a copy of SRC's contents (as rclone sync): only new and changed files move; modes and mtimes kept",
    )
    .argument('<src>', 'a directory or file, local or [user@]host:path')
    .argument('[dst]', 'becomes a copy of SRC (made as needed; no trailing-slash rules); or --to')
    .option('-n, --dry-run', 'itemise what would change (+ new, ~ changed, - deleted), change nothing')
    .option('-c, --checksum', 'compare same-size files by BLAKE3 (each host hashes its own), not by mtime')
    .option(
      '--delete',
      'remove what DST has and SRC lacks, after a transfer without errors (excluded paths never)',
    )
    .option('--max-delete <n>', 'with --delete: delete nothing (and fail) when more than N would go');
  withTransferOptions(sync).action(
    async (src: string, dst: string | undefined, raw: RawOptions & SyncOptions, cmd: Command) => {
      const json = Boolean(cmd.optsWithGlobals().json);
      const maxDelete = raw.maxDelete === undefined ? Number.POSITIVE_INFINITY : Number(raw.maxDelete);
      if (!(maxDelete >= 0) || (Number.isFinite(maxDelete) && !Number.isInteger(maxDelete))) {
        setExit(usage(`--max-delete must be a whole number, not '${raw.maxDelete}'`, json));
        return;
      }
      const mirror = { checksum: Boolean(raw.checksum), delete: Boolean(raw.delete), maxDelete };
      setExit(
        await copyMain(
          dst === undefined ? [src] : [src, dst],
          { ...raw, recursive: true, preserve: true, force: true },
          json,
          mirror,
          'sync',
        ),
      );
    },
  );

  const check = program
    .command('check')
    .description(
      "Compare SRC's contents with DST without changing anything: exit 0 alike, 1 different, 2 on error",
    )
    .argument('<src>', 'a directory or file, local or [user@]host:path')
    .argument('<dst>', 'what to compare it with')
    .option('-c, --checksum', 'hash every same-size file (default: only those whose mtime differs)')
    .option('--no-hash', 'never hash: a same-size file with another mtime counts as modified')
    .option('--no-deref', 'compare symlinks as links instead of following them');
  withRemoteOptions(withFilterOptions(check)).action(
    async (
      src: string,
      dst: string,
      raw: RawOptions & { checksum?: boolean; hash: boolean },
      cmd: Command,
    ) => {
      const json = Boolean(cmd.optsWithGlobals().json);
      const { checkMain } = await import('./check_command.js');
      setExit(
        await checkMain(
          src,
          dst,
          raw.checksum === true,
          !raw.hash,
          () =>
            toCopyOptions({ ...raw, parallel: '1', compress: 'auto', direct: 'ssh', progress: 'off' }, json),
          json,
        ),
      );
    },
  );
}

interface SyncOptions {
  checksum?: boolean;
  delete?: boolean;
  maxDelete?: string;
}

function usage(msg: string, json: boolean): number {
  if (json) process.stdout.write(`${JSON.stringify({ event: 'end', code: ExitCode.usage, error: msg })}\n`);
  else process.stderr.write(`bcmr: ${msg}\n`);
  return ExitCode.usage;
}

/** The options every transfer command takes (copy, sync, move). */
function withTransferOptions(c: Command): Command {
  return withRemoteOptions(withFilterOptions(c))
    .option('-v, --verbose', 'list each file copied')
    .option('-q, --quiet', 'print nothing but errors')
    .option(
      '-P, --parallel <n>',
      'connections to use for the files, or auto (default: from the measured round trip and the work)',
      'auto',
    )
    .option('--no-deref', 'copy symlinks as links instead of following them')
    .addOption(
      new Option('--compress <mode>', 'block compression')
        .choices(['auto', 'zstd', 'lz4', 'none'])
        .default('auto'),
    )
    .option('-b, --background', 'run as a background job (bcmr status to follow it)')
    .option(
      '--to <dst>',
      'fan out: send to this destination too, all at once (repeatable; then every path is a SRC)',
      (v: string, acc: string[] | undefined) => [...(acc ?? []), v],
    )
    .option(
      '--bwlimit <rate>',
      'total rate over all connections and planes, as rsync: KiB/s, or with a suffix (500K, 10M, 1G = binary units per second)',
    )
    .option('--fast', 'skip the server-side hash of downloads (sizes are still checked)')
    .option('--sync', 'fsync each file on the receiving side before it is published')
    .option('-V, --verify', 'after copying, re-read each destination file and compare its BLAKE3')
    .addOption(
      new Option('--progress <mode>', 'progress display')
        .choices(['auto', 'inline', 'plain', 'off'])
        .default('auto'),
    )
    .addOption(
      new Option(
        '--direct <mode>',
        "data path: ssh, direct (bulk data over its own TCP connection, AES-256-GCM; ssh only authenticates), or auto (direct where ssh's window would limit a stream and the port answers)",
      )
        .choices(['ssh', 'direct', 'auto'])
        .default('ssh'),
    );
}

async function copyMain(
  paths: string[],
  raw: RawOptions,
  json: boolean,
  mirror?: MirrorOptions,
  op: 'copy' | 'move' | 'sync' = 'copy',
): Promise<number> {
  if (raw.background) {
    const { detach } = await import('./status_command.js');
    const code = detach(json);
    if (code !== null) return code;
  }
  const out = new CopyOutput({
    verb: op === 'move' ? 'Moved' : 'Copied',
    json,
    verbose: Boolean(raw.verbose),
    quiet: Boolean(raw.quiet),
    progress: raw.progress,
  });
  let outcome: CopyOutcome | null = null;
  const ac = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    // A second Ctrl-C does not wait for the cleanup.
    if (++interrupts > 1) process.exit(ExitCode.interrupted);
    ac.abort();
  };
  // A closed terminal (SIGHUP) stops the copy as Ctrl-C does: cleaned up, not cut off.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSignal);
  try {
    const fan = raw.to ?? [];
    if (paths.length < (fan.length > 0 ? 1 : 2))
      throw new UsageError(`need at least one SRC and a DST (bcmr ${op} SRC... DST, or --to DST)`);
    const opts = toCopyOptions(raw, json);
    if (mirror) opts.mirror = mirror;
    if (fan.length > 0) {
      if (op === 'sync' && paths.length > 1) throw new UsageError('sync takes one SRC with --to');
      const { fanOut } = await import('./fan_out.js');
      const verbose = Boolean(raw.verbose);
      return await fanOut(op, paths, fan, opts, { json, verbose, quiet: Boolean(raw.quiet) }, ac.signal);
    }
    await startFirstConnection(paths, opts);
    // The copy's code loads while ssh connects and the remote server starts.
    const run =
      op === 'move'
        ? (await import('../transfer/move.js')).runMove
        : (await import('../transfer/copy.js')).runCopy;
    trace('copy code loaded');
    outcome = await run(paths.slice(0, -1), paths[paths.length - 1], opts, out, ac.signal);
    if (ac.signal.aborted) throw new InterruptedError();
    let code: number = outcome.failed > 0 ? ExitCode.failed : ExitCode.ok;
    let failure: string | null = null;
    if (outcome.files === 0 && outcome.dirs === 0 && outcome.failed === 0 && !opts.dryRun && !mirror) {
      failure = `nothing to ${op}: no file matched`;
      out.error(failure);
      code = ExitCode.failed;
    }
    out.finish(outcome, code, failure);
    return code;
  } catch (err) {
    const e = ac.signal.aborted ? new InterruptedError() : err;
    const code = exitCodeFor(e);
    const msg = describeError(e);
    out.error(msg);
    if (process.env.BCMR_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    out.finish(outcome, code, msg);
    return code;
  } finally {
    discardPrestarted();
    for (const s of signals) process.off(s, onSignal);
  }
}

/**
 * Starts ssh for the copy's first serve connection (the destination's host, else the first
 * remote source's) before the copy's code loads (early_start.ts).
 */
async function startFirstConnection(paths: string[], opts: CopyOptions): Promise<void> {
  const target = firstRemote(paths.slice(-1), paths.slice(0, -1));
  if (!target) return;
  if (await prestartFirst(opts.ssh, target, opts.fallback)) trace('ssh started');
}

export function toCopyOptions(raw: RawOptions, json: boolean): CopyOptions {
  const parallel = raw.parallel === 'auto' ? 'auto' : Number(raw.parallel);
  if (parallel !== 'auto' && (!Number.isInteger(parallel) || parallel < 1 || parallel > 64)) {
    throw new UsageError(`--parallel must be auto or an integer from 1 to 64, not '${raw.parallel}'`);
  }
  const exclude = pathFilter(raw);
  const remote = remoteOptions(raw);
  if (raw.bwlimit !== undefined) {
    const rate = parseRate(raw.bwlimit);
    if (rate === null)
      throw new UsageError(`--bwlimit must be a rate such as 500K or 10M, not '${raw.bwlimit}'`);
    remote.ssh.bwlimit = new RateLimiter(rate);
  }
  const interactive = !json && process.stdin.isTTY && process.stderr.isTTY;
  return {
    recursive: Boolean(raw.recursive),
    preserve: Boolean(raw.preserve),
    force: Boolean(raw.force),
    dryRun: Boolean(raw.dryRun),
    exclude,
    deref: raw.deref,
    verify: Boolean(raw.verify),
    resume: Boolean(raw.resume),
    ssh: remote.ssh,
    parallel,
    compress: raw.compress,
    fast: Boolean(raw.fast),
    sync: Boolean(raw.sync),
    fallback: raw.fallback,
    direct: raw.direct === 'auto' ? 'auto' : raw.direct === 'direct',
    confirmOverwrite: interactive ? askOverwrite : undefined,
  };
}

async function askOverwrite(paths: string[]): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const shown = paths.slice(0, 10).join('\n  ');
    const more = paths.length > 10 ? `\n  ... and ${paths.length - 10} more` : '';
    const a = await rl.question(`${paths.length} file(s) exist:\n  ${shown}${more}\nOverwrite? [y/N] `);
    return /^y(es)?$/i.test(a.trim());
  } finally {
    rl.close();
  }
}
