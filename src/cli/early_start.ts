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
  const target =
    to.length > 0 ? firstRemote(to, []) : firstRemote(positional.slice(-1), positional.slice(0, -1));
  if (!target || positional.length + to.length < 2) return null;
  const keepSecs = keep === undefined || keep === '' ? undefined : Number(keep);
  if (keepSecs !== undefined && !Number.isInteger(keepSecs)) return null;
  const cfg: SshConfig = { rsh: splitCommand(rsh), remotePath, keepSecs: keepSecs || undefined };
  if (cfg.rsh.length === 0) return null;
  return { cfg, target };
}

/** Starts it (see earlyTarget). */
export async function earlyStart(args: readonly string[]): Promise<void> {
  const start = earlyTarget(args, process.env);
  if (start) await prestartFirst(start.cfg, start.target, true);
}

/**
 * The host a copy connects to first: the first remote among the destinations, else among the
 * sources; null when all are local or an argument does not parse (the copy reports it).
 */
export function firstRemote(dests: readonly string[], sources: readonly string[]): RemoteEndpoint | null {
  try {
    return (
      [...dests, ...sources].map(parseEndpoint).find((e): e is RemoteEndpoint => e.kind === 'remote') ?? null
    );
  } catch {
    return null;
  }
}

/**
 * Starts the ssh of `target`'s first serve connection (ssh_start.ts: the connection takes it
 * up). Not for a host remembered as having no server, when the fallback may take it.
 */
export async function prestartFirst(
  cfg: SshConfig,
  target: RemoteEndpoint,
  fallback: boolean,
): Promise<boolean> {
  const [{ isShellOnly }, { prestartServe }] = await Promise.all([
    import('../client/fallback/shell_hosts.js'),
    import('../client/ssh/ssh_start.js'),
  ]);
  if (fallback && cfg.remotePath === undefined && isShellOnly(cfg.rsh, target)) return false;
  prestartServe(cfg, target);
  return true;
}
