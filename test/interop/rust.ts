/**
 * The Rust bcmr reference binaries (`../shared/rust-ref/bin`, or `BCMR_RS_DIR`): its `serve`
 * session and a driver over its `ServeClient`. When they are missing, `RUST_MISSING` says why
 * in one line and the interop suites skip with that reason (visible in the test report, never a
 * silent pass); `.ci/run` sets BCMR_RS_DIR so CI always runs them.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Cap } from '../../src/protocol/constants.js';
import { cannotRun } from '../helpers/cannot_run.js';
import { BCMR_BIN } from '../helpers/serve.js';

const repo = path.resolve(path.dirname(BCMR_BIN), '..');
export const RS_DIR = process.env.BCMR_RS_DIR || path.resolve(repo, '../shared/rust-ref/bin');
export const RS_SERVE = path.join(RS_DIR, 'bcmr-rs-serve');
export const RS_CLIENT = path.join(RS_DIR, 'bcmr-rs-client');

function missing(): string | null {
  for (const p of [RS_SERVE, RS_CLIENT]) {
    try {
      fs.accessSync(p, fs.constants.X_OK);
    } catch {
      return `Rust reference binaries not found at ${RS_DIR} (set BCMR_RS_DIR): interop with the Rust bcmr NOT tested`;
    }
  }
  return null;
}

export const RUST_MISSING = cannotRun(missing());

/** `bcmr serve` of this checkout as a shell command line for the Rust client's `--server`. */
export function ourServer(root: string): string {
  return `'${process.execPath}' '${BCMR_BIN}' serve --root '${root}'`;
}

export interface RustResult {
  ok: boolean;
  error?: string;
  caps_effective?: number;
  hash?: string;
  local_hash?: string;
  stdio_bytes_sent?: number;
  entries?: { path: string; size: number; is_dir: boolean }[];
  [k: string]: unknown;
}

/** Runs the Rust client once; resolves with its JSON line (rejects after `ms`: a hang is a failure). */
export function rustClient(args: string[], ms = 60_000, env: NodeJS.ProcessEnv = {}): Promise<RustResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(RS_CLIENT, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err = (err + s).slice(-4000)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bcmr-rs-client ${args.join(' ')} hung for ${ms} ms; stderr: ${err}`));
    }, ms);
    child.on('close', () => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as RustResult);
      } catch {
        reject(new Error(`no JSON from bcmr-rs-client ${args.join(' ')}: ${out} ${err}`));
      }
    });
  });
}

/** Every codec and integrity mode, as client caps: each interop suite runs put and get in each. */
export const CODEC_MODES = [
  ['raw', Cap.PUT_OFFSET],
  ['LZ4', Cap.LZ4],
  ['zstd', Cap.ZSTD],
  ['FAST', Cap.ZSTD | Cap.FAST],
  ['SYNC', Cap.LZ4 | Cap.SYNC],
] as const;
