/** Stat, List, Hash and Resume: requests answered with one reply frame. */
import { lstatSync, opendirSync, realpathSync, type Stats, statSync } from 'node:fs';
import { Blake3Hasher } from '../../codec/hash.js';
import { MAX_BLOCK, MAX_COUNT, MAX_FRAME_LEN } from '../../protocol/constants.js';
import type { ClientMessage, ListEntry } from '../../protocol/messages.js';
import type { FdFile } from '../../util/fd_file.js';
import { RELEASED, readBlocks } from '../../util/file_blocks.js';
import { OpError, type SessionContext } from '../context.js';
import { clip, type JailDir } from '../path_guard.js';

type Of<T extends ClientMessage['type']> = Extract<ClientMessage, { type: T }>;

function mtimeSeconds(st: Stats): number {
  return Math.floor(st.mtimeMs / 1000);
}

export async function handleStat(ctx: SessionContext, m: Of<'Stat'>): Promise<void> {
  const st = ctx.guard.stat(m.path);
  ctx.sink.send({ type: 'StatResponse', size: st.size, mtime: mtimeSeconds(st), isDir: st.isDirectory() });
}

export async function handleHash(ctx: SessionContext, m: Of<'Hash'>): Promise<void> {
  const hash = await hashFile(ctx, ctx.guard.openRead(m.path), m.offset, m.limit);
  ctx.sink.send({ type: 'HashResponse', hash });
}

/** BLAKE3 of a range of an opened file; closes it. */
async function hashFile(
  ctx: SessionContext,
  fh: FdFile,
  offset: number,
  limit: number | null,
): Promise<string> {
  try {
    const hasher = new Blake3Hasher();
    // Bounded by the size at open, as Get: a file growing while it is hashed cannot keep
    // the session reading for ever.
    const size = fh.stat().size;
    const want = Math.max(0, Math.min(limit ?? size, size - offset));
    await readBlocks(fh, offset, want, ctx.buffers, (block) => {
      hasher.update(block);
      return RELEASED;
    });
    return hasher.digest('hex');
  } finally {
    fh.close();
  }
}

export async function handleResume(ctx: SessionContext, m: Of<'Resume'>): Promise<void> {
  let fh: FdFile;
  try {
    fh = ctx.guard.openRead(m.path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    ctx.sink.send({ type: 'ResumeResponse', size: 0, blockHash: null });
    return;
  }
  const size = fh.stat().size;
  const blocks = Math.floor(size / MAX_BLOCK);
  if (blocks < 1) fh.close();
  const blockHash = blocks >= 1 ? await hashFile(ctx, fh, (blocks - 1) * MAX_BLOCK, MAX_BLOCK) : null;
  ctx.sink.send({ type: 'ResumeResponse', size, blockHash });
}

/** Fixed bytes of a ListResponse entry besides its path. */
const ENTRY_FIXED = 4 + 8 + 8 + 1;

/**
 * List: every entry under a directory, recursively, symlinks followed where they stay inside
 * the root (a cycle is listed once). Each directory is opened and checked by the guard and its
 * entries are reached through that descriptor, so a directory swapped for a symlink meanwhile
 * is never walked out of the root. The frame budget is checked entry by entry as names are read
 * (rule 17.4), never after reading a huge directory whole. A regular file lists as nothing, as
 * the Rust server answers.
 */
export async function handleList(ctx: SessionContext, m: Of<'List'>): Promise<void> {
  const st = ctx.guard.stat(m.path);
  if (!st.isDirectory()) {
    if (st.isFile()) return ctx.sink.send({ type: 'ListResponse', entries: [] });
    throw new OpError(`io: not a directory: ${clip(m.path)}`);
  }
  const entries: ListEntry[] = [];
  let bytes = 1 + 4;
  const tooBig = (): never => {
    // Rule 17.4: never an oversized frame; the client lists subdirectories instead.
    throw new OpError(`io: listing of ${clip(m.path)} exceeds one 16 MiB frame; list its subdirectories`);
  };
  const top = ctx.guard.openDir(m.path, false);
  // Directories already walked, by real path: a symlink cycle is listed once, not forever.
  const seen = new Set<string>([top.real]);
  const walk = async (dir: JailDir, rel: string): Promise<void> => {
    const children: string[] = [];
    let pending = 0;
    // Read synchronously in batches of 256 (a promise per entry cost more than the entry),
    // still checked against the frame budget name by name.
    const handle = opendirSync(dir.at('.'), { bufferSize: 256 });
    try {
      for (let d = handle.readSync(); d !== null; d = handle.readSync()) {
        pending += ENTRY_FIXED + Buffer.byteLength(d.name) + Buffer.byteLength(rel) + 1;
        if (bytes + pending > MAX_FRAME_LEN || entries.length + children.length >= MAX_COUNT) tooBig();
        children.push(d.name);
      }
    } finally {
      handle.closeSync();
    }
    for (const name of children) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      let target: Stats;
      try {
        target = lstatSync(dir.at(name));
      } catch {
        continue; // gone meanwhile
      }
      let sub: JailDir | null = null;
      // An entry that cannot be listed as what it is (a dangling link, a link leading outside
      // the root or back to a directory already listed, a directory that cannot be opened) is
      // listed as an empty file: v2 has no way to say "skipped", and the client's Get of it
      // then fails with the reason, reported for that entry (never dropped without a word).
      let unlistable = false;
      if (target.isSymbolicLink()) {
        // Followed, as metadata is.
        try {
          const real = realpathSync.native(dir.at(name));
          if (!ctx.guard.contains(real)) unlistable = true;
          else {
            target = statSync(real);
            if (target.isDirectory()) {
              if (seen.has(real)) unlistable = true;
              else sub = ctx.guard.openDir(real, false);
            }
          }
        } catch {
          unlistable = true;
        }
      } else if (target.isDirectory()) {
        try {
          sub = ctx.guard.openDir(dir.realOf(name), false);
        } catch {
          unlistable = true;
        }
      }
      bytes += ENTRY_FIXED + Buffer.byteLength(childRel);
      if (bytes > MAX_FRAME_LEN || entries.length >= MAX_COUNT) {
        sub?.close();
        tooBig();
      }
      entries.push(
        unlistable
          ? { path: childRel, size: 0, mtime: 0, isDir: false }
          : { path: childRel, size: target.size, mtime: mtimeSeconds(target), isDir: sub !== null },
      );
      if (sub) {
        seen.add(sub.real);
        try {
          await walk(sub, childRel);
        } finally {
          sub.close();
        }
      }
    }
  };
  try {
    await walk(top, '');
  } finally {
    top.close();
  }
  ctx.sink.send({ type: 'ListResponse', entries });
}
