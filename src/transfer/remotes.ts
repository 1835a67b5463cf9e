/**
 * The connections one command opens (a copy, a sync, a check): all torn down at once on
 * Ctrl-C, and each closed (or, after an abort, destroyed) when the command ends.
 */
import { openRemote, type RemoteOptions } from '../client/pool/open_remote.js';
import type { RemoteEndpoint } from '../core/endpoint.js';
import type { RemoteFs } from '../core/remote_fs.js';
import { InterruptedError } from '../errors.js';

export class Remotes {
  private readonly open: RemoteFs[] = [];
  private readonly onAbort = () => void Promise.all(this.open.map((r) => r.destroy()));

  constructor(
    private readonly opts: RemoteOptions,
    private readonly notice: (msg: string) => void,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /** A connection to `target`; one that comes up after Ctrl-C is destroyed at once. */
  async connect(target: RemoteEndpoint): Promise<RemoteFs> {
    const remote = await openRemote(target, this.opts, this.notice, this.signal);
    this.open.push(remote);
    if (this.signal.aborted) {
      await remote.destroy();
      throw new InterruptedError();
    }
    return remote;
  }

  /** Ends every connection: closed after a clean run, destroyed after an abort. */
  async closeAll(): Promise<void> {
    this.signal.removeEventListener('abort', this.onAbort);
    await Promise.all(this.open.map((r) => (this.signal.aborted ? r.destroy() : r.close())));
  }
}
