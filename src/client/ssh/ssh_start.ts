/**
 * The ssh command line of a serve connection, and the first connection's ssh started ahead of
 * the rest of the copy. Kept free of the protocol and codec modules: `bcmr copy` loads this,
 * starts ssh, and only then loads what the copy runs, so ssh's handshake and the remote
 * server's start overlap with our own module loading (issue 16: the fixed cost of a copy).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { RemoteEndpoint } from '../../core/endpoint.js';
import type { RateLimiter } from '../../transport/rate_limit.js';
import { privateCacheDir } from '../../util/private_dir.js';
import { shellQuote } from '../../util/shell.js';
import { type Bundle, bundleBoot, serverBundle } from './bundle.js';

export interface SshConfig {
  /** argv of the ssh command (`--rsh` / `BCMR_RSH`, default `ssh`). */
  rsh: string[];
  /**
   * Shell text that starts bcmr on the remote (`--remote-path`). Unset: `bcmr` on the remote
   * PATH, else the server bundle on the remote's Node 20+ (zero-install), else none.
   */
  remotePath?: string;
  /** Idle timeout of every session (`--timeout`; see ConnectOptions.idleMs). */
  idleMs?: number;
  /** Tries after the first for a lost connection (`--retries`; see retry.ts). */
  retries?: number;
  /** `--bwlimit`: every session's bytes, both ways, draw from this one limiter. */
  bwlimit?: RateLimiter;
  /**
   * `--keep-ssh SECS` (opt-in): the first serve connection and the shell commands go through
   * an ssh master kept open SECS after the run, for the next bcmr to the same host (OpenSSH
   * ControlPersist, its socket in a private 0700 directory): no handshake the next time.
   */
  keepSecs?: number;
}

/**
 * Every serve connection is its own TCP connection and cipher stream (PROTOCOL.md section 1):
 * never multiplexed on a ControlMaster, so N connections use N cores on both ends.
 */
export const SERVE_OPTIONS = [
  '-o', 'BatchMode=yes',
  '-o', 'ConnectTimeout=10',
  '-o', 'ControlMaster=no',
  '-o', 'ControlPath=none',
  '-o', 'ServerAliveInterval=15',
  '-o', 'ServerAliveCountMax=20',
]; // biome-ignore format: option pairs

/**
 * The ssh options of a serve connection. `shared` (the first connection of a run): with
 * --keep-ssh it goes through the kept master; the others never do (each its own TCP
 * connection and cipher stream, or -P N would be N channels of one stream).
 */
export function serveOptions(cfg: SshConfig, shared: boolean): string[] {
  const kept = shared ? keptMasterOptions(cfg) : null;
  if (!kept) return SERVE_OPTIONS;
  const pairs: string[] = [];
  for (let i = 0; i < SERVE_OPTIONS.length; i += 2)
    if (!SERVE_OPTIONS[i + 1].startsWith('Control')) pairs.push(SERVE_OPTIONS[i], SERVE_OPTIONS[i + 1]);
  return [...pairs, ...kept];
}

/** The kept master's options (--keep-ssh), or null when not asked for or no private dir. */
export function keptMasterOptions(cfg: SshConfig): string[] | null {
  if (!cfg.keepSecs) return null;
  const dir = privateCacheDir('ssh');
  if (!dir) return null;
  // %C: a hash of host, port and user: one master per destination, and a short socket path.
  return ['-o', 'ControlMaster=auto', '-o', `ControlPath=${dir}/%C`, '-o', `ControlPersist=${cfg.keepSecs}`];
}

/**
 * With AES in hardware, AES-GCM is the fastest cipher OpenSSH has (here 1.8 s per GiB against
 * 2.8 s for chacha20). `^` moves it to the head of the default list without removing any.
 */
function cipherPreference(rsh: readonly string[]): string[] {
  const userChose = rsh.some((a) => a === '-c' || /ciphers/i.test(a));
  return userChose || !cpuHasAes() ? [] : ['-o', 'Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com'];
}

let aes: boolean | null = null;
function cpuHasAes(): boolean {
  if (aes === null) {
    try {
      aes = /^(flags|Features)\s*:.*\baes\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
    } catch {
      aes = false;
    }
  }
  return aes;
}

export function sshArgv(
  cfg: SshConfig,
  target: RemoteEndpoint,
  remoteCommand: string,
  extra: readonly string[] = [],
): { file: string; args: string[] } {
  const [file, ...pre] = cfg.rsh;
  const user = target.user ? ['-l', target.user] : [];
  // `--` keeps a host name starting with '-' from being read as an option.
  return {
    file,
    args: [
      ...pre,
      ...cipherPreference(cfg.rsh),
      ...extra,
      '-T',
      '-e',
      'none',
      ...user,
      '--',
      target.host,
      remoteCommand,
    ],
  };
}

export const HOME_TAG = 'bcmr-home:';

/**
 * The remote command: print the remote home (relative paths start there, as with scp, while
 * the server runs with `--root /`), then become the server. With `--remote-path`, exactly that
 * (works in sh, bash, zsh, fish). Otherwise, under `sh -c` (any login shell): `bcmr` on the
 * PATH, else the bundle on the remote's `node` (bundle.ts), else a line saying there is none.
 */
export function serveCommand(remotePath: string | undefined, bundle: Bundle | null = serverBundle()): string {
  const home = `printf '${HOME_TAG}%s\\n' "$HOME"`;
  if (remotePath !== undefined) return `${home}; exec ${remotePath} serve --root /`;
  const node = bundle
    ? `if command -v node >/dev/null 2>&1; then ${bundleBoot(bundle, shellQuote)}; fi; `
    : '';
  const script =
    `${home}; if command -v bcmr >/dev/null 2>&1; then printf '${SERVER_TAG}installed\\n'; exec bcmr serve --root /; fi; ` +
    // `bcmr deploy`'s launcher, found even where ~/.local/bin is not on a non-interactive PATH.
    `if [ -x "$HOME/.local/bin/bcmr" ]; then printf '${SERVER_TAG}installed\\n'; exec "$HOME/.local/bin/bcmr" serve --root /; fi; ` +
    `${node}printf '${SERVER_TAG}none\\n'; exit 127`;
  return `exec sh -c ${shellQuote(script)}`;
}

export const SERVER_TAG = 'bcmr-server:';

/** A serve connection's ssh started ahead of its use, with its fate recorded from the start. */
interface Prestarted {
  child: ChildProcess;
  spawnError: Error | null;
  exited: Promise<number | null>;
}

/**
 * Node discards a child's unread stdout and stderr once it exits (child_process resumes them),
 * and a session that fails at once (no bcmr there, ssh refused) exits before we read: its home
 * line and its error would be lost. A 'readable' listener keeps them buffered until taken.
 */
const keep = (): void => {};

/** Started sessions not yet taken, by their argv. */
const prestarted = new Map<string, Prestarted>();

const key = (file: string, args: readonly string[]) => JSON.stringify([file, ...args]);

/** Resolves with the child's exit code, also when it has already exited. */
export function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/**
 * Starts the ssh of the first serve connection to `target` now. `connectServe` with the same
 * ssh command takes it instead of starting its own; one never taken is killed when this
 * process exits (a copy that failed before connecting, or went to the fallback).
 */
export function prestartServe(cfg: SshConfig, target: RemoteEndpoint): void {
  const bundle = cfg.remotePath === undefined ? serverBundle() : null;
  const { file, args } = sshArgv(cfg, target, serveCommand(cfg.remotePath, bundle), serveOptions(cfg, true));
  const k = key(file, args);
  if (prestarted.has(k)) return;
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const entry: Prestarted = { child, spawnError: null, exited: exitOf(child) };
  child.once('error', (e) => {
    entry.spawnError = e;
  });
  child.stdout?.on('readable', keep);
  child.stderr?.on('readable', keep);
  // Until taken it must not keep this process alive (a copy that fails before connecting
  // would otherwise wait for a server that waits for us).
  holdsProcess(child, false);
  prestarted.set(k, entry);
}

function holdsProcess(child: ChildProcess, hold: boolean): void {
  for (const h of [child, child.stdin, child.stdout, child.stderr] as ({
    ref(): void;
    unref(): void;
  } | null)[]) {
    if (hold) h?.ref();
    else h?.unref();
  }
}

/** The prestarted session for exactly this ssh command, or null (then spawn one). */
export function takePrestarted(file: string, args: readonly string[]): Prestarted | null {
  const k = key(file, args);
  const entry = prestarted.get(k) ?? null;
  prestarted.delete(k);
  if (entry) {
    holdsProcess(entry.child, true);
    entry.child.stdout?.off('readable', keep);
    entry.child.stderr?.off('readable', keep);
  }
  return entry;
}

/** Ends the sessions started and not taken (the copy failed first, or used the fallback). */
export function discardPrestarted(): void {
  for (const { child } of prestarted.values()) {
    child.stdin?.end();
    child.kill('SIGTERM');
  }
  prestarted.clear();
}
