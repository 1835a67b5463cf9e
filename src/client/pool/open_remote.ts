/**
 * Reaching a remote host: `bcmr serve` over ssh when the remote has it, otherwise (unless
 * --no-fallback) plain ssh with shell commands, said once on stderr.
 */

import { RUNTIME_CAPS } from '../../codec/block.js';
import type { RemoteEndpoint } from '../../core/endpoint.js';
import type { RemoteFs } from '../../core/remote_fs.js';
import { NoRemoteBcmrError } from '../../errors.js';
import { Cap } from '../../protocol/constants.js';
import { forgetShellOnly, isShellOnly, rememberShellOnly } from '../fallback/shell_hosts.js';
import { DEFAULT_CLIENT_CAPS } from '../serve/serve_client.js';
import type { SshConfig } from '../ssh/ssh_start.js';
import { ServePool } from './serve_pool.js';

export type Compress = 'auto' | 'zstd' | 'lz4' | 'none';

export interface RemoteOptions {
  ssh: SshConfig;
  /** -P: a number, or 'auto' (chosen from the measured path and the work). */
  parallel: number | 'auto';
  compress: Compress;
  fast: boolean;
  sync: boolean;
  fallback: boolean;
  resume?: boolean;
  /** -f: the fallback's publishing replaces existing files (bcmr serve is told per file). */
  force?: boolean;
  /**
   * --direct=direct: bulk data over an AES-256-GCM TCP connection beside each ssh session;
   * 'auto': where ssh's window would bind and the port answers.
   */
  direct?: boolean | 'auto';
}

/** The caps we ask for (PROTOCOL.md section 4: as the Rust client, plus FAST / SYNC). */
function clientCaps(o: Pick<RemoteOptions, 'compress' | 'fast' | 'sync' | 'direct'>): number {
  let caps = DEFAULT_CLIENT_CAPS & ~(Cap.LZ4 | Cap.ZSTD);
  if (o.compress === 'auto') caps |= Cap.LZ4 | Cap.ZSTD;
  else if (o.compress === 'zstd') caps |= Cap.ZSTD;
  else if (o.compress === 'lz4') caps |= Cap.LZ4;
  if (o.fast) caps |= Cap.FAST;
  if (o.sync) caps |= Cap.SYNC;
  if (o.direct) caps |= Cap.DIRECT_TCP;
  // Only what this runtime can serve (no zstd before Node 22.15): the server then picks LZ4.
  return caps & RUNTIME_CAPS;
}

export async function openRemote(
  target: RemoteEndpoint,
  opts: RemoteOptions,
  notice: (msg: string) => void,
  signal?: AbortSignal,
): Promise<RemoteFs> {
  // Loaded only when a host has no server: a bcmr-to-bcmr copy never loads the fallback.
  const plain = async () =>
    (await import('../fallback/plain_ssh.js')).PlainSsh.open(opts.ssh, target, {
      sync: opts.sync,
      fast: opts.fast,
      force: opts.force,
    });
  const canRemember = opts.fallback && opts.ssh.remotePath === undefined;
  if (canRemember && isShellOnly(opts.ssh.rsh, target)) {
    // No server there last time: straight to the fallback, unless its probe finds one now.
    const fs = await plain();
    if (!fs.serverMayRun) {
      notice(`no bcmr on ${target.host} (as last time); copying through plain ssh`);
      if (opts.resume) notice(RESUME_NOTICE);
      return fs;
    }
    await fs.close();
    forgetShellOnly(opts.ssh.rsh, target);
  }
  try {
    return await ServePool.open(opts.ssh, target, {
      connections: opts.parallel,
      caps: clientCaps(opts),
      direct: opts.direct ?? false,
      directFallback: opts.fallback,
      notice,
      signal,
    });
  } catch (err) {
    if (!(err instanceof NoRemoteBcmrError) || !opts.fallback) throw err;
    notice(`${err.message}; copying through plain ssh instead (--no-fallback to refuse)`);
    if (opts.resume) notice(RESUME_NOTICE);
    if (canRemember) rememberShellOnly(opts.ssh.rsh, target);
    return plain();
  }
}

const RESUME_NOTICE =
  '-C on plain ssh: downloads of 64 MiB or more continue their verified partial file; uploads and smaller files are copied whole';
