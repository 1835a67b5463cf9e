/** Stat, List, Hash and Resume: requests answered with one reply frame. */
import { type Dirent, type Stats, statSync } from 'node:fs';
import { opendir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { Blake3Hasher } from '../../codec/hash.js';
import { MAX_BLOCK, MAX_COUNT, MAX_FRAME_LEN } from '../../protocol/constants.js';
import type { ClientMessage, ListEntry } from '../../protocol/messages.js';
import { FdFile } from '../../util/fd_file.js';
import { RELEASED, readBlocks } from '../../util/file_blocks.js';
import { OpError, type SessionContext } from '../context.js';

type Of<T extends ClientMessage['type']> = Extract<ClientMessage, { type: T }>;

export function mtimeSeconds(st: Stats): number {
  return Math.floor(st.mtimeMs / 1000);
}

export async function handleStat(ctx: SessionContext, m: Of<'Stat'>): Promise<void> {
  const st = statSync(await ctx.guard.resolve(m.path));
  ctx.sink.send({ type: 'StatResponse', size: st.size, mtime: mtimeSeconds(st), isDir: st.isDirectory() });
}

export async function handleHash(ctx: SessionContext, m: Of<'Hash'>): Promise<void> {
  const hash = await hashFile(ctx, await ctx.guard.resolve(m.path), m.offset, m.limit);
  ctx.sink.send({ type: 'HashResponse', hash });
}

export async function hashFile(
  ctx: SessionContext,
  file: string,
  offset: number,
  limit: number | null,
): Promise<string> {
  const fh = FdFile.open(file, 'r');
  try {
    const hasher = new Blake3Hasher();
    await readBlocks(fh, offset, limit, ctx.buffers, (block) => {
      hasher.update(block);
      return RELEASED;
    });
    return hasher.digest('hex');
  } finally {
    fh.close();
  }
}

export async function handleResume(ctx: SessionContext, m: Of<'Resume'>): Promise<void> {
  const file = await ctx.guard.resolve(m.path);
  let size = 0;
  try {
    size = (await stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    ctx.sink.send({ type: 'ResumeResponse', size: 0, blockHash: null });
    return;
  }
  const blocks = Math.floor(size / MAX_BLOCK);
  const blockHash = blocks >= 1 ? await hashFile(ctx, file, (blocks - 1) * MAX_BLOCK, MAX_BLOCK) : null;
  ctx.sink.send({ type: 'ResumeResponse', size, blockHash });
}

/** Fixed bytes of a ListResponse entry besides its path. */
const ENTRY_FIXED = 4 + 8 + 8 + 1;

export async function handleList(ctx: SessionContext, m: Of<'List'>): Promise<void> {
  const root = await ctx.guard.resolve(m.path);
  const st = await stat(root);
  if (!st.isDirectory()) throw new OpError(`io: not a directory: ${m.path}`);
  const entries: ListEntry[] = [];
  let bytes = 1 + 4;
  const budget = MAX_FRAME_LEN;
  // Directories already walked, by real path: a symlink cycle is listed once, not forever.
  const seen = new Set<string>([await realpath(root)]);
  const walk = async (dir: string, rel: string): Promise<void> => {
    const handle = await opendir(dir);
    const children: [Dirent, string][] = [];
    for await (const d of handle) children.push([d, rel === '' ? d.name : `${rel}/${d.name}`]);
    for (const [d, childRel] of children) {
      const full = path.join(dir, d.name);
      let target: Stats;
      let isDir = d.isDirectory();
      if (d.isSymbolicLink()) {
        // Followed, as metadata is; a link leading outside the root is not listed.
        let real: string;
        try {
          real = await realpath(full);
          target = await stat(real);
        } catch {
          continue;
        }
        if (!ctx.guard.contains(real)) continue;
        isDir = target.isDirectory();
        if (isDir && seen.has(real)) continue;
        if (isDir) seen.add(real);
      } else {
        target = await stat(full);
      }
      bytes += ENTRY_FIXED + Buffer.byteLength(childRel);
      if (bytes > budget || entries.length >= MAX_COUNT) {
        // Rule 17.4: never an oversized frame; the client lists subdirectories instead.
        throw new OpError(`io: listing of ${m.path} exceeds one 16 MiB frame; list its subdirectories`);
      }
      entries.push({ path: childRel, size: target.size, mtime: mtimeSeconds(target), isDir });
      if (isDir) await walk(full, childRel);
    }
  };
  await walk(root, '');
  ctx.sink.send({ type: 'ListResponse', entries });
}
