/**
 * The vocabulary a copy is made of, shared by the transfer engine and the clients that carry it
 * out: work items, per-file results, progress callbacks. Nothing here does I/O.
 */
import type { Blake3Hasher } from '../codec/hash.js';

export interface StatResult {
  size: number;
  mtime: number;
  isDir: boolean;
}

export interface GetItem {
  remote: string;
  local: string;
  /** Size announced by Stat or List; more or fewer bytes fail the file (rule 17.7). */
  size: number;
  /** Replace an existing file (default); otherwise publishing fails if one appeared. */
  overwrite?: boolean;
  /**
   * -C: receive into `.NAME.bcmr-part` beside the destination, keep it on failure, and on a
   * later run continue after its longest prefix that the server's block hashes confirm.
   */
  resume?: boolean;
  /**
   * sync: `local` exists with this size and differs; only the ranges that differ are fetched
   * into a copy of it (serve/delta.ts). Ignored where there is no server (the fallback).
   */
  delta?: { oldSize: number };
}

export interface PutItem {
  local: string;
  remote: string;
  /** Size when planned (the walk stat'ed it); decides striping. The size sent is read at open. */
  size?: number;
  overwrite?: boolean;
  /** Never offer this file through dedup (set when a retry must send every block). */
  noDedup?: boolean;
  /**
   * The file's block hashes computed ahead (while ssh connected); used when the size still
   * matches. If the file changed since, the server's hash of what it got differs and it fails.
   */
  prehash?: Promise<Prehash | null>;
  /**
   * -C: write into `.NAME.bcmr-part` on the remote with PutChunked (bytes land as they arrive),
   * continue after its verified prefix on a later run; the caller publishes the part file.
   */
  resume?: boolean;
  /**
   * An earlier try was lost with its connection: the server may have published the file and
   * only its Ok was lost. A refusal as existing is then checked against the source's hash.
   */
  afterLoss?: boolean;
  /** sync: `remote` exists with this size and differs: only the differing ranges are sent. */
  delta?: { oldSize: number };
}

export interface FileResult<T> {
  item: T;
  bytes: number;
  /** BLAKE3 of the file's content, when known. */
  hash: string | null;
  error: Error | null;
  ms: number;
  /** Bytes the server already had (dedup) and that did not cross the wire. */
  deduped?: number;
  /** Verified bytes of an earlier partial transfer that were kept (-C). */
  resumedFrom?: number;
  /** Bytes of the destination's earlier version that were kept, not sent (a sync delta). */
  kept?: number;
  /** For a resumed upload: the remote part file that holds the verified copy, to be renamed. */
  publishFrom?: string;
}

export interface BatchCallbacks<T> {
  /** `lane`: which of the host's connections carried them (0 the first), where known. */
  onBytes?(n: number, item: T, lane?: number): void;
  onFileDone?(r: FileResult<T>): void;
}

/** Block hashes of a file computed ahead of its dedup Put (see PutItem.prehash). */
export interface Prehash {
  size: number;
  hashes: Uint8Array;
  whole: Blake3Hasher;
}

/**
 * The one way a file's result is built: its duration from `t0`, its bytes, and either its
 * hash or its error (an error always clears the hash). Extras (dedup, resume, publishing) go
 * in `more`.
 */
export function fileResult<T>(
  item: T,
  t0: number,
  o: { bytes?: number; hash?: string | null; error?: Error | null },
  more: Pick<FileResult<T>, 'deduped' | 'resumedFrom' | 'publishFrom' | 'kept'> = {},
): FileResult<T> {
  const error = o.error ?? null;
  return {
    item,
    bytes: o.bytes ?? 0,
    hash: error ? null : (o.hash ?? null),
    error,
    ms: t0 < 0 ? 0 : performance.now() - t0,
    ...more,
  };
}
