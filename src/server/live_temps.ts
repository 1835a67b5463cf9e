/**
 * Temp files this server process is writing right now (fresh Puts), so that a SIGTERM or
 * SIGHUP (sshd ending the session, a shutdown) removes them before the process goes: a killed
 * server must not leave `.NAME.bcmr-tmp-*` files behind. SIGKILL cannot be caught; those
 * temp names are what `leftovers` in the tests look for.
 */
import { unlinkSync } from 'node:fs';

const live = new Set<string>();

export function trackTemp(p: string): void {
  live.add(p);
}

export function untrackTemp(p: string): void {
  live.delete(p);
}

let installed = false;

/** Installs the handlers once per process (the stdio server; `--listen` serves many sessions). */
export function removeTempsOnSignals(): void {
  if (installed) return;
  installed = true;
  for (const [sig, code] of [
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.on(sig, () => {
      for (const p of live) {
        try {
          unlinkSync(p);
        } catch {
          // Already gone.
        }
      }
      process.exit(code);
    });
  }
}
