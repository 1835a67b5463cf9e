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
 * A command's ssh never waits for ever: the handshake has ConnectTimeout (it covers the key
 * exchange too), and a connection that goes silent is dropped after a minute of unanswered
 * keepalives (exit 255: `RemoteFs.script` tries again). A long script that keeps its
 * connection alive is not limited.
 */
const COMMAND_OPTIONS = [
  '-o', 'BatchMode=yes',
  '-o', 'ConnectTimeout=10',
  '-o', 'ServerAliveInterval=15',
  '-o', 'ServerAliveCountMax=4',
]; // biome-ignore format: option pairs

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
  const { file, args } = sshArgv(cfg, target, command, [...COMMAND_OPTIONS, ...(opts.extra ?? [])]);
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
