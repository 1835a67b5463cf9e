/** Get and GetChunked: stream a file range as data frames, then Ok. */
import { type Blake3Hasher, digestAndRecycle, takeHasher } from '../../codec/hash.js';
import type { ClientMessage } from '../../protocol/messages.js';
import { readBlocks } from '../../util/file_blocks.js';
import { OpError, type SessionContext } from '../context.js';

type Get = Extract<ClientMessage, { type: 'Get' }>;
type GetChunked = Extract<ClientMessage, { type: 'GetChunked' }>;

export async function handleGet(ctx: SessionContext, m: Get): Promise<void> {
  const hasher = ctx.fast ? null : takeHasher();
  await sendRange(ctx, m.path, m.offset, null, hasher);
  ctx.sink.send({ type: 'Ok', hash: hasher ? digestAndRecycle(hasher) : null });
}

export async function handleGetChunked(ctx: SessionContext, m: GetChunked): Promise<void> {
  await sendRange(ctx, m.path, m.offset, m.length, null);
  ctx.sink.send({ type: 'Ok', hash: null });
}

async function sendRange(
  ctx: SessionContext,
  p: string,
  offset: number,
  length: number | null,
  hasher: Blake3Hasher | null,
): Promise<void> {
  // Opened and checked by the guard: every byte below is read through this descriptor.
  const fh = ctx.guard.openRead(p);
  try {
    const st = fh.stat();
    if (length !== null) {
      if (offset + length > st.size)
        throw new OpError(`io: range ${offset}+${length} exceeds file size ${st.size}`);
      if (length === 0 && st.size !== 0) throw new OpError('io: empty range on a non-empty file');
    }
    // Bounded by the size at open: a small file is then one synchronous read, with no extra
    // read (a pool round trip) just to find EOF. Bytes appended meanwhile are not sent, as
    // the client expects the size it got from Stat. An offset past the end sends nothing and
    // Ok with the hash of no bytes, as the Rust server does.
    const want = length ?? Math.max(0, st.size - offset);
    const sent = await readBlocks(fh, offset, want, ctx.buffers, (block) => {
      hasher?.update(block);
      return ctx.sink.sendBlock(block, ctx.codec);
    });
    if (sent !== want) throw new OpError(`io: file shrank while reading: ${fh.path}`);
  } finally {
    fh.close();
  }
}
