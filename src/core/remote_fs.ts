/**
 * What a copy needs from a remote host. Two implementations: `ServePool` (bcmr serve over one
 * or more ssh connections) and `PlainSsh` (section 15 fallback: one shell command per step).
 * The copy engine is written once against this interface.
 */
import path from 'node:path';
import type { ListEntry } from '../protocol/messages.js';
import type { ShText } from '../util/shell.js';
import type { BatchCallbacks, GetItem, PutItem, StatResult } from './items.js';
import type { WorkQueue } from './work_queue.js';

/** Which tar a shell-only remote has (`none`: copy file by file). */
export type TarFlavour = 'gnu' | 'bsd' | 'busybox' | 'none';
/** GNU `stat -c` or BSD `stat -f`. */
export type StatFlavour = 'gnu' | 'bsd';

export interface ShellTools {
  tar: TarFlavour;
  stat: StatFlavour;
  verify: 'b3sum' | 'size';
}

/** What a copy will move: -P auto weighs it against the path (client/path_choice.ts). */
export interface WorkFacts {
  bytes: number;
  files: number;
  largest: number;
}

/** What -P auto / --direct auto chose for a host, and why (reported in --json's start event). */
export interface PathChoice {
  connections: number;
  plane: 'ssh' | 'direct';
  /** Smallest round trip measured on the first connection. */
  rttMs: number;
  why: string;
}

export interface RemoteFs {
  /** How this host is reached, for messages and events. */
  readonly via: 'bcmr' | 'ssh';
  /** What carries the file data: the ssh channels, or direct AES-256-GCM TCP connections. */
  readonly plane: 'ssh' | 'direct';
  /** The direct plane was asked for but could not be used: why (the data went over ssh). */
  readonly directUnavailable?: string;
  /**
   * Which server runs there: `installed` bcmr, the shipped `bundle` on the remote's Node,
   * `custom` (--remote-path), or none (`fallback`: plain ssh commands).
   */
  readonly server: 'installed' | 'bundle' | 'custom' | 'fallback';
  /** The remote Node version running the bundle. */
  readonly remoteNode?: string;
  /**
   * The fallback's remote tools: tar and stat flavours, and how an upload is checked before it
   * is published (`b3sum`: BLAKE3 of each staged file; `size`: sizes and tar's own framing).
   */
  readonly shellTools?: ShellTools;
  /**
   * -P auto / --direct auto: decides from the measured path and the work, and opens what was
   * chosen. Null when nothing was left to decide; absent where there is nothing to choose.
   */
  prepare?(work: WorkFacts): Promise<PathChoice | null>;
  /** How many connections carry the files (1 when there is only one). */
  readonly connectionCount?: number;
  /** The remote account's home: relative paths start there. */
  readonly home: string;
  /** null when the path does not exist. */
  stat(path: string): Promise<StatResult | null>;
  list(path: string): Promise<ListEntry[]>;
  /** Creates each directory and its parents; existing ones are fine. */
  mkdirs(paths: readonly string[]): Promise<void>;
  /** Uploads files taken from `queue`; every file taken is reported through `onFileDone`. */
  upload(queue: WorkQueue<PutItem>, cb: BatchCallbacks<PutItem>): Promise<void>;
  download(queue: WorkQueue<GetItem>, cb: BatchCallbacks<GetItem>): Promise<void>;
  /** BLAKE3 hex of each file as stored now, or the error. */
  hashFiles(paths: readonly string[]): Promise<(string | Error)[]>;
  /** BLAKE3 hex of `limit` bytes (to the end when null) from `offset`; absent without a server. */
  hashRange?(path: string, offset: number, limit: number | null): Promise<string>;
  /** Runs a POSIX shell script on the remote (modes, times, links); rejects on failure. */
  script(text: ShText): Promise<string>;
  close(): Promise<void>;
  /** Aborts everything in flight (Ctrl-C). */
  destroy(): Promise<void>;
}

/**
 * Makes a remote path absolute: relative ones start at the remote home, as with scp, and
 * `.`/`..` are resolved here, lexically, as scp's remote shell would (`host:../x` is the home's
 * sibling; the server refuses `..` components). With no home (a forced-command server whose
 * root is where paths start) a relative path stays relative.
 */
export function absoluteRemote(home: string, p: string): string {
  if (home === '' && !p.startsWith('/')) {
    const rel = path.posix.normalize(p === '' ? '.' : p);
    return rel === '.' ? '' : rel.replace(/\/$/, '');
  }
  const abs = path.posix.resolve(home === '' ? '/' : home, p === '' ? '.' : p);
  return abs;
}
