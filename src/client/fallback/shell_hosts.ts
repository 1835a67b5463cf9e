/**
 * Hosts where an earlier copy found no bcmr server (neither bcmr nor a Node 20+): the next copy
 * there goes straight to the plain-ssh fallback, saving the ssh handshake of a serve attempt
 * that would fail (about a third of a small copy's time). The fallback's first command still
 * looks for bcmr, the deploy launcher and node, so a host that gained one is used as a bcmr
 * host again (and forgotten here) at the cost of that one handshake.
 *
 * One line per host in `$XDG_CACHE_HOME/bcmr/shell-hosts` (default `~/.cache`): a SHA-256 of the
 * ssh command, user and host, so the file names no host. A cache that cannot be read or
 * written only costs the handshake.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RemoteEndpoint } from '../../core/endpoint.js';

function file(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'bcmr', 'shell-hosts');
}

function key(rsh: readonly string[], target: RemoteEndpoint): string {
  return createHash('sha256')
    .update(JSON.stringify([rsh, target.user ?? '', target.host]))
    .digest('hex')
    .slice(0, 32);
}

function lines(): string[] {
  try {
    return readFileSync(file(), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

export function isShellOnly(rsh: readonly string[], target: RemoteEndpoint): boolean {
  return lines().includes(key(rsh, target));
}

export function rememberShellOnly(rsh: readonly string[], target: RemoteEndpoint): void {
  if (isShellOnly(rsh, target)) return;
  try {
    mkdirSync(path.dirname(file()), { recursive: true, mode: 0o700 });
    appendFileSync(file(), `${key(rsh, target)}\n`, { mode: 0o600 });
  } catch {
    // No cache: the next copy pays the handshake again.
  }
}

export function forgetShellOnly(rsh: readonly string[], target: RemoteEndpoint): void {
  const k = key(rsh, target);
  const all = lines();
  if (!all.includes(k)) return;
  try {
    writeFileSync(
      file(),
      all
        .filter((l) => l !== k)
        .map((l) => `${l}\n`)
        .join(''),
      { mode: 0o600 },
    );
  } catch {
    // Left as it was: the probe sends this host to bcmr serve each time anyway.
  }
}
