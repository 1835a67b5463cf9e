/**
 * The first serve connection's ssh, started before the command line is parsed: commander and
 * the command's modules take ~30 ms to load, which ssh's handshake can overlap. A short scan of
 * argv finds the destination (else the first remote source) and how ssh runs (--rsh,
 * --remote-path, --keep-ssh and their env). It is only a guess: the copy takes the started ssh
 * only when it would have started the very same command (ssh_start.ts), else it is killed at
 * exit. An option it does not know, -b or --help, and it starts nothing: never an ssh to a
 * host the user did not name.
 */

import type { SshConfig } from '../client/ssh/ssh_start.js';
import type { RemoteEndpoint } from '../core/endpoint.js';
import { parseEndpoint } from '../core/endpoint.js';
import { splitCommand } from '../util/shell.js';

/** Options of copy, sync and move that take a value. */
const WITH_VALUE = new Set([
  '-e', '--exclude', '--include', '--exclude-glob', '--files-from', '--rsh', '--remote-path',
  '--timeout', '--retries', '--keep-ssh', '-P', '--parallel', '--compress', '--to', '--bwlimit',
  '--progress', '--direct', '--max-delete',
]); // biome-ignore format: a list
/** Their flags (a cluster of short ones too, as -rf). */
const FLAGS = new Set([
  '--recursive', '--preserve', '--force', '--dry-run', '--resume', '--from0', '--no-fallback',
  '--direct', '--verbose', '--quiet', '--no-deref', '--fast', '--sync', '--verify', '--checksum',
  '--delete', '--json',
]); // biome-ignore format: a list
const SHORT_FLAGS = /^-[rpfnC0vqVc]+$/;

export interface EarlyStart {
  cfg: SshConfig;
  target: RemoteEndpoint;
}

/** What to start for `argv` (after the subcommand), or null when in any doubt. */
export function earlyTarget(args: readonly string[], env: NodeJS.ProcessEnv): EarlyStart | null {
  let rsh = env.BCMR_RSH ?? 'ssh';
  let remotePath: string | undefined;
  let keep = env.BCMR_KEEP_SSH;
  const positional: string[] = [];
  const to: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    if (WITH_VALUE.has(name)) {
      const v = name !== a ? a.slice(eq + 1) : args[++i];
      if (v === undefined) return null;
      if (name === '--rsh') rsh = v;
      else if (name === '--remote-path') remotePath = v;
      else if (name === '--keep-ssh') keep = v;
      else if (name === '--to') to.push(v);
      continue;
    }
    if (!FLAGS.has(a) && !SHORT_FLAGS.test(a)) return null;
  }
  let target: RemoteEndpoint | null = null;
  try {
    const ends = to.length > 0 ? to : [positional[positional.length - 1], ...positional.slice(0, -1)];
    target =
      ends
        .filter((e) => e !== undefined)
        .map(parseEndpoint)
        .find((e): e is RemoteEndpoint => e.kind === 'remote') ?? null;
  } catch {
    return null;
  }
  if (!target || positional.length + to.length < 2) return null;
  const keepSecs = keep === undefined || keep === '' ? undefined : Number(keep);
  if (keepSecs !== undefined && !Number.isInteger(keepSecs)) return null;
  const cfg: SshConfig = { rsh: splitCommand(rsh), remotePath, keepSecs: keepSecs || undefined };
  if (cfg.rsh.length === 0) return null;
  return { cfg, target };
}

/** Starts it (see earlyTarget); a host remembered as shell-only is left to the fallback. */
export async function earlyStart(args: readonly string[]): Promise<void> {
  const start = earlyTarget(args, process.env);
  if (!start) return;
  const [{ isShellOnly }, { prestartServe }] = await Promise.all([
    import('../client/fallback/shell_hosts.js'),
    import('../client/ssh/ssh_start.js'),
  ]);
  if (start.cfg.remotePath === undefined && isShellOnly(start.cfg.rsh, start.target)) return;
  prestartServe(start.cfg, start.target);
}
