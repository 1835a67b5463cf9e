/** Get and GetChunked: stream a file range as data frames, then Ok. */
import { Blake3Hasher } from '../../codec/hash.js';
import type { ClientMessage } from '../../protocol/messages.js';
import { FdFile } from '../../util/fd_file.js';
import { readBlocks } from '../../util/file_blocks.js';
import { OpError, type SessionContext } from '../context.js';

type Get = Extract<ClientMessage, { type: 'Get' }>;
type GetChunked = Extract<ClientMessage, { type: 'GetChunked' }>;

export async function handleGet(ctx: SessionContext, m: Get): Promise<void> {
  const file = await ctx.guard.resolve(m.path);
  const hasher = ctx.fast ? null : new Blake3Hasher();
  await sendRange(ctx, file, m.offset, null, hasher);
  ctx.sink.send({ type: 'Ok', hash: hasher ? hasher.digest('hex') : null });
}

export async function handleGetChunked(ctx: SessionContext, m: GetChunked): Promise<void> {
  const file = await ctx.guard.resolve(m.path);
  await sendRange(ctx, file, m.offset, m.length, null);
  ctx.sink.send({ type: 'Ok', hash: null });
}

async function sendRange(
  ctx: SessionContext,
  file: string,
  offset: number,
  length: number | null,
  hasher: Blake3Hasher | null,
): Promise<void> {
  const fh = FdFile.open(file, 'r');
  try {
    const st = fh.stat();
    if (!st.isFile()) throw new OpError(`io: not a regular file: ${file}`);
    if (length !== null) {
      if (offset + length > st.size)
        throw new OpError(`io: range ${offset}+${length} exceeds file size ${st.size}`);
      if (length === 0 && st.size !== 0) throw new OpError('io: empty range on a non-empty file');
    } else if (offset > st.size) {
      throw new OpError(`io: offset ${offset} beyond end of file (${st.size})`);
    }
    // Bounded by the size at open: a small file is then one synchronous read, with no extra
    // read (a pool round trip) just to find EOF. Bytes appended meanwhile are not sent, as
    // the client expects the size it got from Stat.
    const want = length ?? st.size - offset;
    const sent = await readBlocks(fh, offset, want, ctx.buffers, (block) => {
      hasher?.update(block);
      return ctx.sink.sendBlock(block, ctx.codec);
    });
    if (sent !== want) throw new OpError(`io: file shrank while reading: ${file}`);
  } finally {
    fh.close();
  }
}
