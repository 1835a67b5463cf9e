/**
 * `bcmr remove [options] PATH...` (alias `rm`): options to RemoveOptions, the questions (-i,
 * and the one asked before removing on a remote host), lines or `--json` events, and the exit
 * status (0 all removed, 1 some not, 2 usage, 130 interrupted).
 */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { describeError, ExitCode, exitCodeFor, InterruptedError, UsageError } from '../errors.js';
import type { RemoveOptions } from '../transfer/remove.js';
import { type FilterRaw, pathFilter, withFilterOptions } from './filter_options.js';
import { type RemoteRaw, remoteOptions, withRemoteOptions } from './remote_options.js';

interface RemoveRaw extends RemoteRaw, FilterRaw {
  background?: boolean;
  recursive?: boolean;
  force?: boolean;
  dir?: boolean;
  interactive?: boolean;
  yes?: boolean;
  dryRun?: boolean;
  verbose?: boolean;
  quiet?: boolean;
}

export function addRemoveCommand(program: Command, setExit: (code: number) => void): void {
  const c = program
    .command('remove')
    .alias('rm')
    .description('Remove files and trees, locally or on HOST:PATH (asks once before a remote removal)')
    .argument('<paths...>', 'paths to remove; remote ones as [user@]host:path')
    .option('-r, --recursive', 'remove directories and everything in them')
    .option('-f, --force', 'a missing path is no error; remove on a remote without asking')
    .option('-d, --dir', 'remove empty directories')
    .option('-i, --interactive', 'ask before each path')
    .option('-y, --yes', 'remove on a remote without asking')
    .option('-n, --dry-run', 'print what would be removed, remove nothing')
    .option('-b, --background', 'run as a background job (bcmr status to follow it)')
    .option('-v, --verbose', 'print each path removed')
    .option('-q, --quiet', 'print nothing but errors');
  withRemoteOptions(withFilterOptions(c, 'keep')).action(
    async (paths: string[], raw: RemoveRaw, cmd: Command) => {
      setExit(await removeMain(paths, raw, Boolean(cmd.optsWithGlobals().json)));
    },
  );
}

async function removeMain(paths: string[], raw: RemoveRaw, json: boolean): Promise<number> {
  if (raw.background) {
    const { detach } = await import('./status_command.js');
    const code = detach(json);
    if (code !== null) return code;
  }
  const emit = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const say = (s: string) => process.stderr.write(`bcmr: ${s}\n`);
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSignal);
  const t0 = performance.now();
  let counts = { removed: 0, failed: 0 };
  let code: number = ExitCode.ok;
  let error: string | undefined;
  try {
    const exclude = pathFilter(raw);
    const interactive = !json && process.stdin.isTTY === true && process.stderr.isTTY === true;
    const opts: RemoveOptions = {
      ...remoteOptions(raw),
      recursive: Boolean(raw.recursive),
      force: Boolean(raw.force),
      emptyDirs: Boolean(raw.dir),
      dryRun: Boolean(raw.dryRun),
      exclude,
      askEach: raw.interactive && interactive ? ask : undefined,
      askRemote: raw.force || raw.yes ? undefined : interactive ? ask : refuseUnasked,
    };
    const { runRemove } = await import('../transfer/remove.js');
    counts = await runRemove(
      paths,
      opts,
      {
        removed: (p) => {
          if (json) emit({ event: 'delete', path: p });
          else if (raw.verbose) process.stdout.write(`removed ${p}\n`);
        },
        failed: (p, err) => {
          const msg = err.message.includes(p) ? err.message : `${p}: ${err.message}`;
          if (json) emit({ event: 'error', path: p, error: msg });
          say(msg);
        },
        planned: (line) => (json ? emit({ event: 'plan', line }) : process.stdout.write(`${line}\n`)),
        notice: (msg) => {
          if (!raw.quiet) say(msg);
        },
      },
      ac.signal,
    );
    if (ac.signal.aborted) throw new InterruptedError();
    code = counts.failed > 0 ? ExitCode.failed : ExitCode.ok;
  } catch (err) {
    const e = ac.signal.aborted ? new InterruptedError() : err;
    code = exitCodeFor(e);
    error = describeError(e);
    say(error);
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
  if (json) {
    const seconds = Math.round(performance.now() - t0) / 1000;
    emit({
      event: 'summary',
      removed: counts.removed,
      failed: counts.failed,
      seconds,
      exit: code,
      ...(error ? { error } : {}),
    });
  }
  return code;
}

async function ask(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

async function refuseUnasked(question: string): Promise<boolean> {
  throw new UsageError(`${question}: not asked without a terminal; use -y (or -f) to go ahead`);
}
