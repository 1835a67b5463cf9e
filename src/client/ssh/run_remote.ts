/**
 * Running one shell command line on a remote over the system OpenSSH client (never our own
 * SSH): the fallback's scripts and what the protocol cannot do (modes, times, links, renames).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import type { RemoteEndpoint } from '../../core/endpoint.js';
import { SshError } from '../../errors.js';
import { type SshConfig, sshArgv } from './ssh_start.js';

export interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs one shell command line on the remote, feeding `input` to its stdin. Used by the plain
 * ssh fallback and for what the protocol cannot do (modes, times, links).
 */
export function runRemote(
  cfg: SshConfig,
  target: RemoteEndpoint,
  command: string,
  opts: {
    input?: Uint8Array | string | Readable;
    extra?: readonly string[];
    onChild?: (c: ChildProcess) => void;
  } = {},
): Promise<RunResult> {
  const { file, args } = sshArgv(cfg, target, command, ['-o', 'BatchMode=yes', ...(opts.extra ?? [])]);
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    opts.onChild?.(child);
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      err = (err + s).slice(-16384);
    });
    child.once('error', (e) => reject(new SshError(`cannot run ${file}: ${e.message}`)));
    child.stdin.on('error', () => {});
    const input = opts.input ?? '';
    if (input instanceof Readable) {
      input.once('error', (e) => {
        child.kill();
        reject(e);
      });
      input.pipe(child.stdin);
    } else child.stdin.end(input);
    child.once('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
  });
}
