/**
 * `bcmr status [ID] [--watch] [--rm ID | --all] [--gc]`: background jobs (jobs.ts) as a table,
 * one job in detail, or followed until it ends; removing the files of finished jobs. And
 * `detach`, what `-b` does in the command that was asked to go to the background.
 */
import type { Command } from 'commander';
import { ExitCode, UsageError } from '../errors.js';
import { shellQuote } from '../util/shell.js';
import { formatBytes } from './format.js';
import {
  GC_AGE_MS,
  inBackgroundJob,
  type JobView,
  listJobs,
  readJob,
  removeJob,
  startBackground,
} from './jobs.js';

/** `-b`: starts the job and says its ID; null inside the job itself (it runs in the foreground). */
export function detach(json: boolean): number | null {
  if (inBackgroundJob()) return null;
  const id = startBackground(process.argv);
  if (json) process.stdout.write(`${JSON.stringify({ event: 'job', id })}\n`);
  else process.stderr.write(`bcmr: started job ${id} (bcmr status ${id})\n`);
  return ExitCode.ok;
}

interface StatusRaw {
  watch?: boolean;
  rm?: string;
  all?: boolean;
  gc?: boolean;
}

export function addStatusCommand(program: Command, setExit: (code: number) => void): void {
  program
    .command('status')
    .description('Background jobs (started with -b): list them, show or --watch one, remove finished ones')
    .argument('[id]', 'one job')
    .option('-w, --watch', 'follow the job (or all running ones) until it ends')
    .option('--rm <id>', "remove a finished job's log")
    .option('--all', 'with --rm or alone as --rm: remove every finished job')
    .option('--gc', 'remove finished jobs older than 7 days')
    .action(async (id: string | undefined, raw: StatusRaw, cmd: Command) => {
      setExit(await statusMain(id, raw, Boolean(cmd.optsWithGlobals().json)));
    });
}

async function statusMain(id: string | undefined, raw: StatusRaw, json: boolean): Promise<number> {
  const emit = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
  if (raw.rm !== undefined || raw.all || raw.gc) {
    const now = Date.now();
    const which = raw.all
      ? listJobs().filter((j) => j.state !== 'running')
      : raw.gc
        ? listJobs().filter((j) => j.state !== 'running' && now - j.updated > GC_AGE_MS)
        : [readJob(raw.rm ?? '')].filter((j): j is JobView => j !== null);
    if (raw.rm !== undefined && !raw.all && which.length === 0) throw new UsageError(`no job ${raw.rm}`);
    let removed = 0;
    for (const j of which) {
      if (removeJob(j.id)) removed++;
      else if (raw.rm !== undefined && !raw.all) throw new UsageError(`job ${j.id} is still running`);
    }
    if (json) emit({ event: 'removed', jobs: removed });
    else process.stderr.write(`bcmr: removed ${removed} job(s)\n`);
    return ExitCode.ok;
  }
  if (id !== undefined) {
    const show = () => {
      const j = readJob(id);
      if (!j) throw new UsageError(`no job ${id}`);
      if (json) emit({ event: 'job', ...j });
      else process.stdout.write(`${detail(j)}\n`);
      return j;
    };
    let j = show();
    while (raw.watch && j.state === 'running') {
      await new Promise((r) => setTimeout(r, 1000));
      j = show();
    }
    return j.state === 'failed' ? ExitCode.failed : ExitCode.ok;
  }
  for (;;) {
    const jobs = listJobs();
    if (json) for (const j of jobs) emit({ event: 'job', ...j });
    else process.stdout.write(`${table(jobs)}\n`);
    if (!raw.watch || !jobs.some((j) => j.state === 'running')) return ExitCode.ok;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The command as it could be typed again. */
function shown(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : shellQuote(a))).join(' ');
}

function progress(j: JobView): string {
  const files = j.totalFiles !== null ? `${j.files}/${j.totalFiles}` : `${j.files}`;
  const bytes = j.totalBytes ? `${formatBytes(j.bytes)}/${formatBytes(j.totalBytes)}` : formatBytes(j.bytes);
  return `${files} files, ${bytes}${j.failed ? `, ${j.failed} failed` : ''}`;
}

function table(jobs: JobView[]): string {
  if (jobs.length === 0) return 'no jobs';
  return jobs
    .map((j) => {
      const when = new Date(j.started).toISOString().slice(0, 19).replace('T', ' ');
      return `${j.id}  ${j.state.padEnd(11)}  ${when}  ${progress(j).padEnd(32)}  bcmr ${shown(j.argv)}`;
    })
    .join('\n');
}

function detail(j: JobView): string {
  return [
    `job ${j.id}: ${j.state}${j.exit !== null ? ` (exit ${j.exit})` : ''}`,
    `  command:  bcmr ${shown(j.argv)}`,
    `  in:       ${j.cwd}`,
    `  started:  ${new Date(j.started).toISOString()}`,
    `  progress: ${progress(j)}`,
    ...(j.lastError ? [`  error:    ${j.lastError}`] : []),
  ].join('\n');
}
