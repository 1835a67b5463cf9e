/** A duplex byte channel a protocol session runs over: child stdio, a socket, a pipe pair. */
import type { ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

export interface ByteChannel {
  readonly readable: AsyncIterable<Uint8Array>;
  readonly writable: Writable;
  /** Ends our side and waits until the peer is gone; idempotent. */
  close(): Promise<void>;
  /** Tears the channel down now (Ctrl-C): the peer is killed, unread input dropped. */
  abort(): Promise<void>;
  /** Text the peer wrote on its diagnostic stream (child stderr), for error messages. */
  diagnostics(): string;
}

export function streamChannel(
  readable: Readable,
  writable: Writable,
  onClose?: () => Promise<void>,
): ByteChannel {
  let closing: Promise<void> | null = null;
  return {
    readable,
    writable,
    close() {
      closing ??= (async () => {
        writable.end();
        await onClose?.();
      })();
      return closing;
    },
    abort() {
      readable.destroy();
      return this.close();
    },
    diagnostics: () => '',
  };
}

/** Channel over a spawned child's stdin/stdout, keeping the tail of its stderr. */
export function childChannel(child: ChildProcess): ByteChannel {
  if (!child.stdin || !child.stdout) throw new TypeError('Child needs piped stdin and stdout');
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    stderr = (stderr + s).slice(-8192);
  });
  // 'exit', not 'close': 'close' also waits for stdout to end, which never happens if nobody
  // reads it any more (an aborted session).
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  // A dead child makes stdin emit EPIPE; the session reports it through the sink instead.
  child.stdin.on('error', () => {});
  let closing: Promise<void> | null = null;
  return {
    readable: child.stdout,
    writable: child.stdin,
    close() {
      closing ??= (async () => {
        child.stdin?.end();
        const timer = setTimeout(() => child.kill('SIGTERM'), 5000);
        await exited;
        clearTimeout(timer);
      })();
      return closing;
    },
    abort() {
      child.kill('SIGTERM');
      child.stdout?.destroy();
      return this.close();
    },
    diagnostics: () => stderr.trim(),
  };
}
