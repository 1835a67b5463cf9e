/**
 * Benchmarks of dedup, resume and --sync (issue 6), reported as single figures:
 *   - repeat upload of a random file over the slow link: wire bytes and time of the second run
 *     against the first (dedup);
 *   - a download over the slow link killed at 50 % and resumed with -C: bytes on the wire in
 *     both runs against the file size (the first run's are counted as the part file's size);
 *   - --sync cost on many small files over loopback.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Dataset } from './datasets.js';
import type { Route } from './tools.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, '../../bin/bcmr.js');

interface Run {
  seconds: number;
  file: Record<string, unknown> | undefined;
  pid: number;
}

function bcmr(route: Route, prefix: string[], args: string[], onSpawn?: (pid: number) => void): Promise<Run> {
  const argv = [...prefix, process.execPath, BIN, '--json', 'copy', '-f', '--rsh', route.rsh, ...args];
  const t0 = performance.now();
  return new Promise((resolve) => {
    const c = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
    if (c.pid) onSpawn?.(c.pid);
    let out = '';
    c.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    c.on('close', () => {
      const file = out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((e) => e.event === 'file');
      resolve({ seconds: (performance.now() - t0) / 1000, file, pid: c.pid ?? 0 });
    });
  });
}

export async function dedupRepeat(
  route: Route,
  prefix: string[],
  data: Dataset,
  dstDir: string,
): Promise<Record<string, string>> {
  const first = await bcmr(route, prefix, [data.path, `${route.alias}:${dstDir}/first.bin`]);
  const second = await bcmr(route, prefix, [data.path, `${route.alias}:${dstDir}/second.bin`]);
  const wire = data.bytes - Number(second.file?.deduped ?? 0);
  return {
    'repeat upload, first run (s)': first.seconds.toFixed(2),
    'repeat upload, second run (s)': second.seconds.toFixed(2),
    'second / first time (target <= 0.35)': (second.seconds / first.seconds).toFixed(3),
    'second run wire bytes / file (target < 1 %)': `${((wire / data.bytes) * 100).toFixed(2)} %`,
  };
}

export async function resumeAfterKill(
  route: Route,
  prefix: string[],
  data: Dataset,
  dstDir: string,
): Promise<Record<string, string>> {
  mkdirSync(dstDir, { recursive: true });
  const dst = path.join(dstDir, 'resumed.bin');
  const part = path.join(dstDir, '.resumed.bin.bcmr-part');
  rmSync(part, { force: true });
  let pid = 0;
  const run = bcmr(
    route,
    prefix,
    ['-C', '--compress', 'none', `${route.alias}:${data.path}`, dst],
    (p) => (pid = p),
  );
  while (!existsSync(part) || statSync(part).size < data.bytes / 2)
    await new Promise((r) => setTimeout(r, 5));
  process.kill(pid, 'SIGKILL');
  await run;
  const kept = statSync(part).size;
  const second = await bcmr(route, prefix, ['-C', '--compress', 'none', `${route.alias}:${data.path}`, dst]);
  const sent = Number(second.file?.bytes ?? Number.NaN);
  return {
    'killed at (bytes in the part file)': String(kept),
    'resumed from': String(second.file?.resumedFrom ?? 0),
    'total wire bytes / file (target <= 1.1)': ((kept + sent) / data.bytes).toFixed(3),
  };
}

export async function syncCost(route: Route, data: Dataset, dstDir: string): Promise<Record<string, string>> {
  const times: Record<string, number> = {};
  for (const [name, flags] of [
    ['without --sync', []],
    ['with --sync', ['--sync']],
  ] as const) {
    rmSync(dstDir, { recursive: true, force: true });
    mkdirSync(dstDir, { recursive: true });
    times[name] = (await bcmr(route, [], ['-r', ...flags, data.path, `${route.alias}:${dstDir}`])).seconds;
  }
  return {
    [`${data.name} upload without --sync (s)`]: times['without --sync'].toFixed(2),
    [`${data.name} upload with --sync (s)`]: times['with --sync'].toFixed(2),
  };
}
