/**
 * Riding out a flaky network: which failures are worth another try, and how long to wait
 * between tries. A connection lost while connecting, listing, measuring or moving data is
 * retried with exponential backoff; a refusal (authentication, an unknown host, a server's
 * Error frame, a tampered record, a stalled peer) is not, since another try would meet it again.
 */
import {
  AeadError,
  ConnectionClosedError,
  SshError,
  TimeoutError,
  TruncatedStreamError,
} from '../../errors.js';

/** `--retries` when not given: tries after the first, per connection and per request. */
export const DEFAULT_RETRIES = 5;

/** The first wait; each further one doubles, up to MAX_BACKOFF_MS. */
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 4000;

/**
 * ssh's own words for failures that will not heal by themselves: another try costs the user
 * the backoff for nothing. Anything else ssh says (reset, broken pipe, timed out, closed by
 * the remote, refused while sshd restarts) is taken as the network's.
 */
const PERMANENT_SSH =
  /Permission denied|Host key verification failed|IDENTIFICATION HAS CHANGED|Could not resolve hostname|Name or service not known|nodename nor servname|cannot run |no matching (host key|cipher|key exchange|MAC)|Bad configuration|Unsupported option|Too many authentication failures|Bad owner or permissions|Unable to negotiate/i;

/** True when `err` means the connection was lost, not that something refused us. */
export function isTransient(err: unknown): boolean {
  if (err instanceof AeadError || err instanceof TimeoutError) return false;
  if (err instanceof ConnectionClosedError || err instanceof TruncatedStreamError) return true;
  if (err instanceof SshError) return !PERMANENT_SSH.test(err.message);
  return false;
}

/** How long to wait before try `attempt` (1 for the first retry): doubling, with jitter. */
export function backoffMs(attempt: number): number {
  const base = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (attempt - 1));
  // Connections cut at once should not all come back at once.
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Runs `fn` until it succeeds, fails for a reason that is not transient, or `retries` tries
 * after the first have failed too: then the last error, its message saying how many attempts
 * were made. `stop()` true ends the tries at once (an interrupted copy).
 */
export async function withRetries<T>(
  retries: number,
  fn: (attempt: number) => Promise<T>,
  stop: () => boolean = () => false,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!isTransient(err) || stop()) throw err;
      if (attempt >= retries) throw gaveUp(err as Error, attempt + 1);
      await sleep(backoffMs(attempt + 1));
      if (stop()) throw err;
    }
  }
}

/** `err` with its message saying the tries are over (same class, so exit codes do not change). */
export function gaveUp(err: Error, attempts: number): Error {
  if (attempts <= 1 || / attempts; --retries/.test(err.message)) return err;
  err.message = `${err.message} (gave up after ${attempts} attempts; --retries to change)`;
  return err;
}
