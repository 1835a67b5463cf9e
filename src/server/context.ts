/** What every request handler of a serve session works with. */
import type { Codec } from '../codec/block.js';
import { BcmrError, PathError, ProtocolError } from '../errors.js';
import { Cap } from '../protocol/constants.js';
import type { MessageReader } from '../protocol/message_reader.js';
import type { FrameSink } from '../transport/frame_sink.js';
import type { BlockBuffers } from '../util/file_blocks.js';
import type { Cas } from './cas.js';
import type { PathGuard } from './path_guard.js';

export interface SessionContext {
  readonly guard: PathGuard;
  readonly reader: MessageReader;
  readonly sink: FrameSink;
  /** Effective capabilities (offered & asked). */
  readonly caps: number;
  readonly codec: Codec;
  /** Content store for dedup; opened on first use. */
  cas(): Cas;
  /** Rule 17.9: a Done right after a completed PutChunked range is discarded. */
  discardNextDone: boolean;
  /** Whether this session fsyncs received files (SYNC). */
  readonly sync: boolean;
  /** Two reused read buffers (one session handles one request at a time). */
  readonly buffers: BlockBuffers;
  /** Whether Get skips its hash (FAST). */
  readonly fast: boolean;
}

export function hasCap(ctx: SessionContext, cap: number): boolean {
  return (ctx.caps & cap) !== 0;
}

export { Cap };

/**
 * One line for an Error frame, starting with a stable code word (rule 17.8):
 * `not-found:`, `exists:`, `denied:`, `escape:`, `io:`, `proto:`.
 */
export function errorLine(err: unknown): string {
  if (err instanceof PathError) return oneLine(err.message);
  if (err instanceof ProtocolError) return oneLine(`proto: ${err.message}`);
  if (err instanceof BcmrError) return oneLine(err.message);
  const e = err as NodeJS.ErrnoException;
  const detail = e?.message ?? String(err);
  switch (e?.code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return oneLine(`not-found: ${detail}`);
    case 'EEXIST':
      return oneLine(`exists: ${detail}`);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return oneLine(`denied: ${detail}`);
    case 'ELOOP':
      return oneLine(`escape: refusing to follow a symlink: ${detail}`);
    default:
      return oneLine(`io: ${detail}`);
  }
}

/**
 * Error lines echo paths, and a path may be up to a frame long: the line is cut so that an
 * Error frame always fits far below the frame cap.
 */
const MAX_ERROR_LINE = 2048;

function oneLine(s: string): string {
  const line = s.replace(/[\r\n]+/g, ' ');
  return line.length <= MAX_ERROR_LINE ? line : `${line.slice(0, MAX_ERROR_LINE)}... (cut)`;
}

/** An operation error the session answers with an Error frame (not a protocol violation). */
export class OpError extends BcmrError {
  constructor(message: string) {
    super('BCMR_IO', message);
  }
}
