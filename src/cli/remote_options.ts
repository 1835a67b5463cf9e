/**
 * The options of every command that reaches a remote host (copy, sync, check, move, remove,
 * ls...): how ssh is run, how long a silent remote is waited for, how often a lost connection
 * is tried again, and whether a host without bcmr is reached through plain ssh.
 */
import type { Command } from 'commander';
import type { RemoteOptions } from '../client/pool/open_remote.js';
import { DEFAULT_RETRIES } from '../client/pool/retry.js';
import { UsageError } from '../errors.js';
import { splitCommand } from '../util/shell.js';

export interface RemoteRaw {
  rsh?: string;
  remotePath?: string;
  timeout: string;
  retries: string;
  fallback: boolean;
  keepSsh?: string;
}

export function withRemoteOptions(c: Command): Command {
  return c
    .option('--rsh <cmd>', 'ssh command to use (env BCMR_RSH)')
    .option(
      '--remote-path <cmd>',
      'bcmr command on the remote (default: bcmr on its PATH, else the server bundle on its Node 20+)',
    )
    .option('--timeout <secs>', 'give up on a remote that moves no byte for this long', '60')
    .option(
      '--retries <n>',
      'tries again (with backoff) after a lost connection, per connection and per request',
      String(DEFAULT_RETRIES),
    )
    .option(
      '--keep-ssh <secs>',
      'keep the ssh connection open SECS after the run for the next bcmr to the same host (ControlPersist; env BCMR_KEEP_SSH)',
    )
    .option(
      '--no-fallback',
      'fail instead of falling back: to plain ssh when the remote has no bcmr, to the ssh data path when --direct=direct cannot connect',
    );
}

/** The ssh side of RemoteOptions, checked; one connection, no codec or plane choices. */
export function remoteOptions(raw: RemoteRaw): RemoteOptions {
  const timeout = Number(raw.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) {
    throw new UsageError(`--timeout must be a positive number of seconds, not '${raw.timeout}'`);
  }
  const retries = Number(raw.retries);
  if (!Number.isInteger(retries) || retries < 0 || retries > 100) {
    throw new UsageError(`--retries must be an integer from 0 to 100, not '${raw.retries}'`);
  }
  const rsh = splitCommand(raw.rsh ?? process.env.BCMR_RSH ?? 'ssh');
  if (rsh.length === 0) throw new UsageError('--rsh is empty');
  const keepText = raw.keepSsh ?? process.env.BCMR_KEEP_SSH;
  const keepSecs = keepText === undefined || keepText === '' ? undefined : Number(keepText);
  if (keepSecs !== undefined && !(Number.isInteger(keepSecs) && keepSecs >= 0 && keepSecs <= 86_400))
    throw new UsageError(`--keep-ssh must be a whole number of seconds up to 86400, not '${keepText}'`);
  return {
    ssh: {
      rsh,
      remotePath: raw.remotePath,
      idleMs: timeout * 1000,
      retries,
      keepSecs: keepSecs || undefined,
    },
    parallel: 1,
    compress: 'auto',
    fast: false,
    sync: false,
    fallback: raw.fallback,
  };
}

export function collect(v: string, acc: string[]): string[] {
  return [...acc, v];
}
