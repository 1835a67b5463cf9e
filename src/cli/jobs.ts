/**
 * Background jobs (`-b`): a copy, sync, move or remove detached from the terminal, its NDJSON
 * events in `<state>/jobs/ID.jsonl` (`$XDG_STATE_HOME/bcmr/jobs` on Linux), its stderr in
 * `ID.err`, what it is in `ID.json`. The job is this same command run again with `--json`
 * and BCMR_JOB_ID set (which makes its `-b` a no-op). A job's state is read from its files:
 * running while its process lives, done or failed by its final event, interrupted when the
 * process is gone without one (killed, machine restarted).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import envPaths from 'env-paths';

export type JobState = 'running' | 'done' | 'failed' | 'interrupted';

export interface JobInfo {
  id: string;
  pid: number;
  argv: string[];
  cwd: string;
  /** ms since the epoch. */
  started: number;
}

export interface JobView extends JobInfo {
  state: JobState;
  exit: number | null;
  files: number;
  failed: number;
  bytes: number;
  totalFiles: number | null;
  totalBytes: number | null;
  lastError: string | null;
  /** ms since the epoch of the last write to the log. */
  updated: number;
}

/** Logs of finished jobs older than this go with `status --gc`. */
export const GC_AGE_MS = 7 * 24 * 3600 * 1000;

export function jobsDir(): string {
  return path.join(envPaths('bcmr', { suffix: '' }).log, 'jobs');
}

/** Whether this process is a background job's own run (its -b does nothing). */
export function inBackgroundJob(): boolean {
  return process.env.BCMR_JOB_ID !== undefined;
}

/** Starts this command again, detached, as job ID; returns the ID. */
export function startBackground(argv: readonly string[]): string {
  const dir = jobsDir();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const id = newId(dir);
  const out = fs.openSync(path.join(dir, `${id}.jsonl`), 'wx', 0o600);
  const err = fs.openSync(path.join(dir, `${id}.err`), 'wx', 0o600);
  const [node, script, ...rest] = argv;
  const child = spawn(node, [...process.execArgv, script, '--json', ...rest], {
    cwd: process.cwd(),
    detached: true,
    stdio: ['ignore', out, err],
    env: { ...process.env, BCMR_JOB_ID: id },
  });
  fs.closeSync(out);
  fs.closeSync(err);
  const info: JobInfo = { id, pid: child.pid ?? -1, argv: rest, cwd: process.cwd(), started: Date.now() };
  fs.writeFileSync(path.join(dir, `${id}.json`), `${JSON.stringify(info)}\n`, { mode: 0o600 });
  child.unref();
  return id;
}

/** Short, sortable by start, unique in `dir`. */
function newId(dir: string): string {
  for (;;) {
    const id = `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 3)
      .toString(36)
      .padStart(3, '0')}`;
    if (!fs.existsSync(path.join(dir, `${id}.json`))) return id;
  }
}

export function listJobs(): JobView[] {
  let names: string[];
  try {
    names = fs.readdirSync(jobsDir());
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith('.json'))
    .map((n) => readJob(n.slice(0, -5)))
    .filter((j): j is JobView => j !== null)
    .sort((a, b) => a.started - b.started);
}

export function readJob(id: string): JobView | null {
  if (!/^[a-z0-9]+$/.test(id)) return null;
  const base = path.join(jobsDir(), id);
  let info: JobInfo;
  try {
    info = JSON.parse(fs.readFileSync(`${base}.json`, 'utf8')) as JobInfo;
  } catch {
    return null;
  }
  const view: JobView = {
    ...info,
    state: 'running',
    exit: null,
    files: 0,
    failed: 0,
    bytes: 0,
    totalFiles: null,
    totalBytes: null,
    lastError: null,
    updated: info.started,
  };
  let text = '';
  try {
    text = fs.readFileSync(`${base}.jsonl`, 'utf8');
    view.updated = fs.statSync(`${base}.jsonl`).mtimeMs;
  } catch {}
  let final = false;
  for (const line of text.split('\n')) {
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (e.event === 'start') {
      view.totalFiles = (view.totalFiles ?? 0) + Number(e.files ?? 0);
      view.totalBytes = (view.totalBytes ?? 0) + Number(e.bytes ?? 0);
    } else if (e.event === 'file' || e.event === 'delete') {
      if (e.outcome === 'failed') {
        view.failed++;
        view.lastError = String(e.error ?? '');
      } else if (e.outcome !== 'interrupted') {
        view.files++;
        view.bytes += Number(e.bytes ?? 0);
      }
    } else if (e.event === 'error') view.lastError = String(e.error ?? '');
    // The last word of a command: a summary of the whole (not one destination's), or `end`.
    if ((e.event === 'summary' && e.to === undefined) || e.event === 'end') {
      final = true;
      view.exit = Number(e.exit ?? e.code ?? 1);
      if (typeof e.error === 'string') view.lastError = e.error;
    }
  }
  // 130: stopped by a signal (Ctrl-C, SIGTERM), cleaned up: interrupted, not failed.
  if (final) view.state = view.exit === 0 ? 'done' : view.exit === 130 ? 'interrupted' : 'failed';
  else if (!alive(info.pid)) view.state = 'interrupted';
  if (view.state !== 'done' && !view.lastError) {
    try {
      const err = fs.readFileSync(`${base}.err`, 'utf8').trim().split('\n').pop();
      if (err) view.lastError = err;
    } catch {}
  }
  return view;
}

/** The job's process is there (and is a bcmr: a pid can be reused after it ended). */
function alive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('bcmr');
  } catch {
    return true; // no /proc: trust the signal check
  }
}

/** Removes a job's files; a running job is not removed. */
export function removeJob(id: string): boolean {
  const j = readJob(id);
  if (!j || j.state === 'running') return false;
  for (const ext of ['.json', '.jsonl', '.err'])
    fs.rmSync(path.join(jobsDir(), `${id}${ext}`), { force: true });
  return true;
}
