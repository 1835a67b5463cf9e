/** Mkdir and Truncate. */
import type { ClientMessage } from '../../protocol/messages.js';
import type { SessionContext } from '../context.js';
import { openOwnForWrite } from '../path_guard.js';

type Of<T extends ClientMessage['type']> = Extract<ClientMessage, { type: T }>;

export async function handleMkdir(ctx: SessionContext, m: Of<'Mkdir'>): Promise<void> {
  ctx.guard.openDir(m.path, true).close();
  ctx.sink.send({ type: 'Ok', hash: null });
}

/** Creates the file if absent and sets its size; never through a symlink, never a FIFO. */
export async function handleTruncate(ctx: SessionContext, m: Of<'Truncate'>): Promise<void> {
  const target = ctx.guard.writeTarget(m.path, true);
  try {
    // A part file of ours is kept; another user's is replaced, never written into.
    const { fh } = openOwnForWrite(ctx.guard, target.dir, target.name, m.path);
    try {
      // ftruncate on the checked descriptor: O_TRUNC at open would cut before the check.
      fh.truncate(0);
      fh.truncate(m.size);
      if (ctx.sync) await fh.sync();
    } finally {
      fh.close();
    }
  } finally {
    target.dir.close();
  }
  ctx.sink.send({ type: 'Ok', hash: null });
}
