/**
 * What a copy reports as it goes, whatever carries it: the start (what, how, over what), bytes,
 * one event per file, notices and a dry run's plan lines. `cli/output.ts` renders them as a
 * progress line or as `--json` NDJSON.
 */
import type { ShellTools } from '../core/remote_fs.js';

/** `interrupted`: stopped by Ctrl-C (the job's own line says so; no line per file). */
export type Outcome = 'ok' | 'failed' | 'interrupted';

export interface FileEvent {
  source: string;
  dest: string;
  bytes: number;
  blake3: string | null;
  ms: number;
  outcome: Outcome;
  error?: string;
  /** Bytes the server already had (dedup), not sent. */
  deduped?: number;
  /** Verified bytes of an earlier partial download that were kept (-C). */
  resumedFrom?: number;
  /** sync: bytes of the destination's earlier version kept, not sent (a delta). */
  kept?: number;
}

export interface StartEvent {
  /** `relay`: remote -> remote through this machine. */
  op: 'local' | 'upload' | 'download' | 'relay';
  /** How the destination (or, for a download, the source) is reached. */
  via: 'local' | 'bcmr' | 'ssh';
  /** Which server runs on the remote (see RemoteFs.server), and its Node for a bundle. */
  server?: 'installed' | 'bundle' | 'custom' | 'fallback';
  remoteNode?: string;
  /** With the fallback: the remote's tar and stat flavours and how uploads are checked. */
  shell?: ShellTools;
  /** For a relay: true, and how the source host is reached. */
  relay?: boolean;
  sourceVia?: 'bcmr' | 'ssh';
  /** What carries the file data (`--direct`). */
  plane: 'local' | 'ssh' | 'direct';
  /** The direct plane was asked for and could not be used: why (the data went over ssh). */
  directUnavailable?: string;
  files: number;
  bytes: number;
  dirs: number;
  connections: number;
  /** With -P auto / --direct auto: the round trip measured and why the connections and plane. */
  path?: { rttMs: number; why: string };
}

export interface CopyReporter {
  start(e: StartEvent): void;
  /** `lane`: which connection to the host carried them, where known (progress lanes). */
  bytes(n: number, lane?: number): void;
  /** A file's bytes are all there (verified and published later; its `file` event then). */
  transferred?(): void;
  file(e: FileEvent): void;
  /** A message for stderr that is not a failure (e.g. falling back to plain ssh). */
  notice(msg: string): void;
  /** One line of a dry run's plan. */
  planned(line: string): void;
  /** sync --delete removed this destination entry. */
  deleted?(path: string): void;
}

export interface CopyOutcome {
  files: number;
  failed: number;
  bytes: number;
  dirs: number;
}
