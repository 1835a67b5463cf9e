/**
 * One ssh connection shared by a run's shell commands (OpenSSH ControlMaster): the first
 * command pays the handshake, the next ones a channel. The ControlPath is in a private temp
 * directory of this run (never a shared or guessable one), and the master is ended when the
 * run closes; should the run die first, ControlPersist ends it 30 s later. Serve connections
 * never use it: each of those is its own TCP connection and cipher stream (ssh_start.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RemoteEndpoint } from '../../core/endpoint.js';
import { ConnectionClosedError } from '../../errors.js';
import { keptMasterOptions, type SshConfig, sshArgv } from './ssh_start.js';

export class ControlMaster {
  private dir: string | null = null;
  /** Once closed, no command may use it: it would start a master (and a directory) nothing ends. */
  private closed = false;

  constructor(
    private readonly cfg: SshConfig,
    private readonly target: RemoteEndpoint,
  ) {}

  /** ssh options of a command that shares the connection (made by the first such command). */
  get options(): string[] {
    if (this.closed) throw new ConnectionClosedError('Interrupted');
    // --keep-ssh: the kept master (left running for the next run; see ssh_start.ts).
    const kept = keptMasterOptions(this.cfg);
    if (kept) return kept;
    this.dir ??= mkdtempSync(path.join(os.tmpdir(), 'bcmr-ssh-'));
    return ownMaster(this.dir);
  }

  /** Ends the master, if one was made, and removes its directory. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const dir = this.dir;
    if (dir === null) return;
    const { file, args } = sshArgv(this.cfg, this.target, '', [...ownMaster(dir), '-O', 'exit']);
    await new Promise<void>((resolve) => {
      const c = spawn(file, args.slice(0, -1), { stdio: 'ignore' });
      c.once('error', () => resolve());
      c.once('close', () => resolve());
    });
    rmSync(dir, { recursive: true, force: true });
    this.dir = null;
  }
}

/** The options of our own master, its socket in `dir`. */
function ownMaster(dir: string): string[] {
  return [
    '-o', 'ControlMaster=auto',
    '-o', `ControlPath=${path.join(dir, 'cm')}`,
    '-o', 'ControlPersist=30',
  ]; // biome-ignore format: option pairs
}
