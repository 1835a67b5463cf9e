/** Mkdir and Truncate. */
import { constants } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import type { ClientMessage } from '../../protocol/messages.js';
import type { SessionContext } from '../context.js';

type Of<T extends ClientMessage['type']> = Extract<ClientMessage, { type: T }>;

export async function handleMkdir(ctx: SessionContext, m: Of<'Mkdir'>): Promise<void> {
  await mkdir(await ctx.guard.resolve(m.path, 'write'), { recursive: true });
  ctx.sink.send({ type: 'Ok', hash: null });
}

export async function handleTruncate(ctx: SessionContext, m: Of<'Truncate'>): Promise<void> {
  const file = await ctx.guard.resolve(m.path, 'write');
  await mkdir(path.dirname(file), { recursive: true });
  const fh = await open(
    file,
    constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
  );
  try {
    await fh.truncate(m.size);
    if (ctx.sync) await fh.sync();
  } finally {
    await fh.close();
  }
  ctx.sink.send({ type: 'Ok', hash: null });
}
