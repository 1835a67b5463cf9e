/**
 * `bcmr ls | stat | du | hash`: looking at a path here or on a host, through its server (or the
 * plain-ssh fallback) with the requests a copy uses: Stat, List, Hash. One connection per host,
 * opened when first needed and closed at the end.
 */
import fs from 'node:fs';
import path from 'node:path';
import { openRemote, type RemoteOptions } from '../client/pool/open_remote.js';
import { fileHashHex } from '../codec/hash.js';
import { hostLabel, parseEndpoint } from '../core/endpoint.js';
import { absoluteRemote, type RemoteFs } from '../core/remote_fs.js';
import { RemoteError } from '../errors.js';
import { PathFilter } from './path_filter.js';
import { walkLocal } from './walk.js';

export interface Entry {
  /** Relative to the path looked at ('' for the path itself). */
  path: string;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  isDir: boolean;
}

/** One end to look at: this machine or one host. */
export interface Place {
  /** The path as the user typed it, and as this end names it. */
  readonly shown: string;
  readonly abs: string;
  /** null when missing. Follows links, as the server's Stat does. */
  stat(): Promise<Entry | null>;
  /** Every entry below, recursively, parents first. */
  list(): Promise<Entry[]>;
  /** BLAKE3 hex of the file at `rel` (or of a range of it). */
  hash(rel: string, offset: number, limit: number | null): Promise<string>;
}

/** Opens the places named by `args` (one connection per host) and runs `fn` over each in turn. */
export async function withPlaces(
  args: readonly string[],
  opts: RemoteOptions,
  notice: (msg: string) => void,
  signal: AbortSignal,
  fn: (p: Place) => Promise<void>,
): Promise<void> {
  const remotes = new Map<string, Promise<RemoteFs>>();
  try {
    for (const a of args) {
      const e = parseEndpoint(a);
      if (e.kind === 'local') {
        await fn(localPlace(e.path));
        continue;
      }
      const key = hostLabel(e);
      let r = remotes.get(key);
      if (!r) {
        r = openRemote(e, opts, notice, signal);
        remotes.set(key, r);
      }
      await fn(remotePlace(await r, `${key}:${e.path}`, e.path));
    }
  } finally {
    await Promise.all(
      [...remotes.values()].map((r) =>
        r.then((fs) => (signal.aborted ? fs.destroy() : fs.close())).catch(() => {}),
      ),
    );
  }
}

function localPlace(p: string): Place {
  const abs = path.resolve(p);
  return {
    shown: p,
    abs,
    async stat() {
      const st = fs.statSync(abs, { throwIfNoEntry: false });
      return st
        ? {
            path: '',
            size: st.isDirectory() ? 0 : st.size,
            mtime: Math.floor(st.mtimeMs / 1000),
            isDir: st.isDirectory(),
          }
        : null;
    },
    async list() {
      const failures: { path: string; error: Error }[] = [];
      const tree = walkLocal(abs, { recursive: true, deref: false, exclude: PathFilter.none }, failures);
      if (failures.length > 0) throw failures[0].error;
      return (tree?.entries ?? [])
        .filter((e) => e.rel !== '')
        .map((e) => ({
          path: e.rel,
          size: e.kind === 'file' ? e.size : 0,
          mtime: Math.floor(e.mtime),
          isDir: e.kind === 'dir',
        }));
    },
    hash: (rel, offset, limit) => fileHashHex(rel === '' ? abs : path.join(abs, rel), offset, limit),
  };
}

function remotePlace(remote: RemoteFs, shown: string, p: string): Place {
  const abs = absoluteRemote(remote.home, p);
  return {
    shown,
    abs,
    async stat() {
      const st = await remote.stat(abs);
      return st ? { path: '', size: st.isDir ? 0 : st.size, mtime: st.mtime, isDir: st.isDir } : null;
    },
    async list() {
      return (await remote.list(abs)).map((e) => ({
        path: e.path,
        size: e.isDir ? 0 : e.size,
        mtime: e.mtime,
        isDir: e.isDir,
      }));
    },
    async hash(rel, offset, limit) {
      const file = rel === '' ? abs : path.posix.join(abs, rel);
      if (offset !== 0 || limit !== null) {
        if (!remote.hashRange) throw new RemoteError(`${shown}: hashing a range needs bcmr on the host`);
        return remote.hashRange(file, offset, limit);
      }
      const [h] = await remote.hashFiles([file]);
      if (h instanceof Error) throw h;
      return h;
    },
  };
}
