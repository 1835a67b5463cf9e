/**
 * Typed errors with stable codes, and the one mapping from an error to an exit status
 * (`exitCodeFor`) and to its line (`describeError`). The entry points call them: `cli/main.ts`
 * for what a command throws, `copy_command.ts` for the status its `--json` end event carries,
 * and the server bundle's entry; no other code turns an error into a number.
 */

export type ErrorCode =
  | 'BCMR_PROTOCOL'
  | 'BCMR_REMOTE'
  | 'BCMR_CONNECTION_CLOSED'
  | 'BCMR_TIMEOUT'
  | 'BCMR_INTEGRITY'
  | 'BCMR_PATH'
  | 'BCMR_EXISTS'
  | 'BCMR_IO'
  | 'BCMR_USAGE'
  | 'BCMR_SSH'
  | 'BCMR_NO_REMOTE_BCMR'
  | 'BCMR_DIRECT_UNAVAILABLE'
  | 'BCMR_DOWNGRADE'
  | 'BCMR_INTERRUPTED';

export class BcmrError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The peer broke the wire format; the session cannot continue. */
export class ProtocolError extends BcmrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BCMR_PROTOCOL', message, options);
  }
}

/**
 * The stream ended inside a frame: malformed as a protocol matter (the server exits 3 as for
 * any), but also what a connection cut by the network looks like, so a client tries again.
 */
export class TruncatedStreamError extends ProtocolError {}

/**
 * A direct-plane record failed AES-GCM authentication: the bytes were corrupted or tampered
 * with on the way. Fatal to the session like any protocol violation, and never retried (a
 * tampering path would only tamper again).
 */
export class AeadError extends ProtocolError {
  constructor(message: string) {
    super(`integrity check failed: ${message}`);
  }
}

/**
 * The remote answered with an Error frame. `kind` is the leading code word our server
 * writes (`not-found`, `exists`, `denied`, `escape`, `io`, `proto`), or `other` for free text
 * from a foreign server.
 */
export class RemoteError extends BcmrError {
  readonly kind: RemoteErrorKind;
  constructor(message: string, options?: { cause?: unknown }) {
    super('BCMR_REMOTE', message, options);
    this.kind = remoteErrorKind(message);
  }
}

export type RemoteErrorKind = 'not-found' | 'exists' | 'denied' | 'escape' | 'io' | 'proto' | 'other';

const KINDS: readonly RemoteErrorKind[] = ['not-found', 'exists', 'denied', 'escape', 'io', 'proto'];

function remoteErrorKind(message: string): RemoteErrorKind {
  const colon = message.indexOf(':');
  const word = colon > 0 ? message.slice(0, colon) : '';
  return (KINDS as readonly string[]).includes(word) ? (word as RemoteErrorKind) : 'other';
}

/** An Error frame saying the path does not exist (our code word, or a foreign server's text). */
export function isNotFound(err: unknown): boolean {
  return (
    err instanceof RemoteError &&
    (err.kind === 'not-found' || /no such file|not found|does not exist/i.test(err.message))
  );
}

/** The connection ended (or was aborted) before the request completed. */
export class ConnectionClosedError extends BcmrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BCMR_CONNECTION_CLOSED', message, options);
  }
}

/** The peer went silent: no byte either way for longer than the idle timeout (`--timeout`). */
export class TimeoutError extends BcmrError {
  constructor(message: string) {
    super('BCMR_TIMEOUT', message);
  }
}

/** Bytes or hashes did not match what the other side promised. */
export class IntegrityError extends BcmrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BCMR_INTEGRITY', message, options);
  }
}

/** A path was refused (NUL, `..`, outside the root). */
export class PathError extends BcmrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BCMR_PATH', message, options);
  }
}

/** The destination exists and -f was not given (nothing was replaced). */
export class ExistsError extends BcmrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BCMR_EXISTS', message, options);
  }
}

export class UsageError extends BcmrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BCMR_USAGE', message, options);
  }
}

/** ssh itself failed: connection refused, host key or authentication failure, bad options. */
export class SshError extends BcmrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BCMR_SSH', message, options);
  }
}

/** ssh worked but the remote has no usable `bcmr serve` (section 15: fall back to plain ssh). */
export class NoRemoteBcmrError extends BcmrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BCMR_NO_REMOTE_BCMR', message, options);
  }
}

/**
 * The direct data plane could not be set up (the server offers none, cannot listen, or its
 * port is unreachable, e.g. behind a firewall): the ssh data path can take over.
 */
export class DirectUnavailableError extends BcmrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BCMR_DIRECT_UNAVAILABLE', message, options);
  }
}

/**
 * A peer negotiated what it must not: the direct plane without AES-256-GCM, or capabilities
 * the client never asked for. Never a reason to fall back quietly. Exit status 3, as a
 * protocol violation.
 */
export class DowngradeError extends BcmrError {
  constructor(message: string) {
    super('BCMR_DOWNGRADE', message);
  }
}

/** The user pressed Ctrl-C (SIGINT) or the job got SIGTERM. */
export class InterruptedError extends BcmrError {
  constructor(message = 'Interrupted') {
    super('BCMR_INTERRUPTED', message);
  }
}

/** Exit statuses a script can rely on. */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  protocol: 3,
  interrupted: 130,
} as const;

export function exitCodeFor(err: unknown): number {
  if (err instanceof BcmrError) {
    switch (err.code) {
      case 'BCMR_USAGE':
        return ExitCode.usage;
      case 'BCMR_PROTOCOL':
      case 'BCMR_DOWNGRADE':
        return ExitCode.protocol;
      case 'BCMR_INTERRUPTED':
        return ExitCode.interrupted;
      default:
        return ExitCode.failed;
    }
  }
  return ExitCode.failed;
}

/** One line, no stack: what the user sees. */
export function describeError(err: unknown): string {
  // Our own messages are written for the user, some on purpose over several lines.
  if (err instanceof BcmrError) return err.message;
  if (err instanceof Error) {
    const sys = err as NodeJS.ErrnoException;
    if (sys.code && sys.syscall) return `${sys.code}: ${err.message}`;
    return err.message.split('\n')[0];
  }
  return String(err);
}
