/**
 * `bcmr serve` over N independent ssh connections. The first connection answers one-shot
 * requests (Stat, List, Mkdir, Hash); file transfers run on all N, each taking files from a
 * shared queue while it is healthy. A connection poisoned by a failed Put (PROTOCOL.md
 * section 13) is replaced, and the files that were in flight on it go back to the queue.
 */

import os from 'node:os';
import type { RemoteEndpoint } from '../../core/endpoint.js';
import type { StatResult } from '../../core/items.js';
import {
  type BatchCallbacks,
  type FileResult,
  fileResult,
  type GetItem,
  type PutItem,
} from '../../core/items.js';
import type { PathChoice, RemoteFs, WorkFacts } from '../../core/remote_fs.js';
import { WorkQueue } from '../../core/work_queue.js';
import {
  AeadError,
  ConnectionClosedError,
  DirectUnavailableError,
  isNotFound,
  RemoteError,
  SshError,
  TimeoutError,
} from '../../errors.js';
import { Cap } from '../../protocol/constants.js';
import type { ListEntry } from '../../protocol/messages.js';
import { type ShText, sh } from '../../util/shell.js';
import { connectServe, type ServeConnection, type ServerKind } from '../serve/connect_serve.js';
import { type DeltaHost, getDelta, putDelta } from '../serve/delta.js';
import { openDirect } from '../serve/direct.js';
import { getFiles } from '../serve/get_files.js';
import { stripes } from '../serve/policy.js';
import { putFiles } from '../serve/put_files.js';
import type { ServeClient } from '../serve/serve_client.js';
import { getStriped, putStriped, type RangeBatch, type RangeItem } from '../serve/stripe.js';
import { ControlMaster } from '../ssh/control_master.js';
import { runRemote } from '../ssh/run_remote.js';
import type { SshConfig } from '../ssh/ssh_start.js';
import { choosePath, type PathAsk } from './path_choice.js';
import { backoffMs, DEFAULT_RETRIES, gaveUp, isTransient, sleep, withRetries } from './retry.js';

/** How long removing a failed striped upload's remote temp file may take. */
const REMOVE_TEMP_MS = 5000;

export interface PoolOptions {
  /** -P: a number, or 'auto' (decided in `prepare` from the path and the work). */
  connections: number | 'auto';
  caps: number;
  /**
   * Run each connection's data over a direct AES-256-GCM TCP session (PROTOCOL.md 12); 'auto':
   * decided in `prepare`, and an unreachable port quietly leaves the data on ssh.
   */
  direct?: boolean | 'auto';
  /** When the direct plane is unavailable, use the ssh sessions (said once) instead of failing. */
  directFallback?: boolean;
  notice?: (msg: string) => void;
  /** Aborted by Ctrl-C: no further tries. */
  signal?: AbortSignal;
}

/**
 * Opens one connection of the pool: an ssh serve session and, with `direct`, the direct
 * session beside it. Once the direct plane proved unavailable the rest stay on ssh (one
 * notice, no 5 s wait per connection).
 */
class Connector {
  /** Set once the direct plane proved unavailable: later connections stay on ssh. */
  directDown = false;
  /** Why the direct plane was given up (for --direct auto's report). */
  downWhy = '';
  /** --direct auto chose the direct plane (`prepare`). */
  autoDirect = false;
  /** How long to wait for the direct port (auto: a firewall that drops SYNs costs less). */
  directTimeoutMs: number | undefined;

  constructor(
    private readonly cfg: SshConfig,
    private readonly target: RemoteEndpoint,
    private readonly opts: PoolOptions,
  ) {}

  /** Tries after the first for a lost connection or request (`--retries`). */
  get retries(): number {
    return this.cfg.retries ?? DEFAULT_RETRIES;
  }

  /** True once the copy was interrupted: no further tries. */
  readonly stopped = (): boolean => this.opts.signal?.aborted === true;

  /** One connection, tried again with backoff while the network loses it (retry.ts). */
  /** `shared`: the run's first (control) connection, the one --keep-ssh puts on the kept master. */
  connect(shared = false): Promise<ServeConnection> {
    return withRetries(this.retries, () => this.connectOnce(shared), this.stopped);
  }

  private async connectOnce(shared: boolean): Promise<ServeConnection> {
    const conn = await connectServe(this.cfg, this.target, { caps: this.opts.caps, shared });
    const wanted = this.opts.direct === true || (this.opts.direct === 'auto' && this.autoDirect);
    if (!wanted || this.directDown) return conn;
    return { ...conn, client: await this.upgrade(conn.client) };
  }

  /** The direct session beside `client` (which it then owns), or `client` when it is out of reach. */
  async upgrade(client: ServeClient): Promise<ServeClient> {
    try {
      return await openDirect(client, this.opts.caps, this.directTimeoutMs);
    } catch (err) {
      const auto = this.opts.direct === 'auto';
      if (err instanceof DirectUnavailableError && (this.opts.directFallback || auto)) {
        if (!this.directDown) {
          this.directDown = true;
          if (!auto)
            this.opts.notice?.(
              `direct data plane unavailable (${err.message}); using the ssh data path (--no-fallback to refuse)`,
            );
          this.downWhy = err.message;
        }
        return client;
      }
      await client.destroy();
      throw err;
    }
  }
}

export class ServePool implements RemoteFs {
  readonly via = 'bcmr';
  private readonly open = new Set<ServeClient>();
  private control: ServeClient;
  readonly home: string;
  /** Which server answered the first connection (installed bcmr, the bundle, --remote-path's). */
  readonly server: ServerKind;
  /** The remote Node running the bundle, when it is the bundle. */
  readonly remoteNode: string | undefined;
  private destroyed = false;
  /** destroy() once: Ctrl-C and the command's end both call it. */
  private destroying: Promise<void> | null = null;
  /**
   * Remote temp files a striped or delta upload is writing. Ctrl-C removes them here, in
   * destroy(), before the shell master goes: a removal left to the upload itself raced the
   * master's exit (and lost, on a loaded machine, leaving a part file behind).
   */
  private readonly heldTemps = new Set<string>();
  /** Extra connections, started as soon as the first one proved the remote has bcmr. */
  private readonly spare: Promise<ServeClient>[] = [];
  /** The connection each worker (after the first, which uses `control`) works on. */
  private slots: (Promise<ServeClient> | undefined)[] = [];
  /** How many connections carry the files: -P, or what `prepare` chose for -P auto. */
  private connections: number;
  /** What `prepare` chose: decided once per copy, whatever asks again. */
  private chosen: PathChoice | null = null;
  /** The shell commands' one ssh connection (publish, -p, a delta's base copy, --delete). */
  private readonly scripts: ControlMaster;

  private constructor(
    private readonly cfg: SshConfig,
    private readonly target: RemoteEndpoint,
    private readonly opts: PoolOptions,
    private readonly connector: Connector,
    first: ServeConnection,
    spare: Promise<ServeClient>[],
  ) {
    this.scripts = new ControlMaster(cfg, target);
    this.control = first.client;
    this.home = first.home;
    this.server = first.server;
    this.remoteNode = first.nodeVersion;
    this.open.add(this.control);
    this.connections = decidedLater(opts) ? 1 : (opts.connections as number);
    this.adopt(spare);
  }

  /** Takes extra connections into the pool as they come up (dropped if it was destroyed meanwhile). */
  private adopt(spare: Promise<ServeClient>[]): void {
    for (const p of spare) {
      const adopted = p.then(async (c) => {
        if (this.destroyed) {
          await c.destroy('Interrupted');
          throw new ConnectionClosedError('Interrupted');
        }
        this.open.add(c);
        return c;
      });
      adopted.catch(() => {});
      this.spare.push(adopted);
    }
    this.slots = [undefined, ...this.spare];
  }

  /**
   * -P auto / --direct auto: measures the round trip on the first connection, chooses from it
   * and the work (path_choice.ts), then takes up the direct plane and opens the extra
   * connections. Null when neither was asked for (-P N and --direct ssh|direct as given).
   */
  async prepare(work: WorkFacts): Promise<PathChoice | null> {
    if (this.chosen) return this.chosen;
    if (!decidedLater(this.opts)) return null;
    const rttMs = await this.roundTrip();
    const ask: PathAsk = {
      connections: this.opts.connections,
      plane: this.opts.direct === 'auto' ? 'auto' : this.opts.direct ? 'direct' : 'ssh',
    };
    const directOffered = (this.control.caps & Cap.DIRECT_TCP) !== 0;
    const choice = choosePath({ rttMs, directOffered, cores: os.availableParallelism() }, work, ask);
    if (this.opts.direct === 'auto' && choice.plane === 'direct') {
      this.connector.autoDirect = true;
      // A port that drops SYNs silently would cost the whole 5 s; on this path an answer takes
      // one round trip, so a few hundred ms is plenty.
      this.connector.directTimeoutMs = Math.max(1000, 20 * rttMs);
      const ssh = this.control;
      this.control = await this.connector.upgrade(ssh);
      if (this.control !== ssh) {
        this.open.delete(ssh);
        this.open.add(this.control);
      } else {
        choice.plane = 'ssh';
        choice.why += ` (direct port out of reach: ${this.connector.downWhy}; ssh instead)`;
      }
    }
    if (choice.connections > 1) {
      this.connections = choice.connections;
      const extra = Array.from({ length: choice.connections - 1 }, () =>
        this.connector.connect().then((c) => c.client),
      );
      for (const p of extra) p.catch(() => {});
      this.adopt(extra);
    }
    this.chosen = choice;
    return this.chosen;
  }

  /**
   * The smallest of three round trips on the control connection, in ms. A try on a connection
   * that was lost meanwhile is not a round trip: it is measured again on the new one.
   */
  private async roundTrip(): Promise<number> {
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3; i++) {
      best = Math.min(
        best,
        await this.onControl(async (c) => {
          const t0 = performance.now();
          await c.stat('/').catch((err) => {
            if (c.failure) throw err;
          });
          return performance.now() - t0;
        }),
      );
    }
    return best;
  }

  /** How many connections carry the files. */
  get connectionCount(): number {
    return this.connections;
  }

  /**
   * Opens all N connections at once (an ssh handshake is ~0.3 s: they overlap with each other
   * and with planning) and waits for the first. Throws NoRemoteBcmrError when the remote has
   * no bcmr.
   */
  static async open(cfg: SshConfig, target: RemoteEndpoint, opts: PoolOptions): Promise<ServePool> {
    const connector = new Connector(cfg, target, opts);
    const first = connector.connect(true);
    // The others start at once too (with --direct, each with a rendezvous of its own).
    // With -P auto or --direct auto the others open once the path is measured (prepare).
    const n = decidedLater(opts) ? 1 : (opts.connections as number);
    const spare = Array.from({ length: Math.max(0, n - 1) }, () => connector.connect().then((c) => c.client));
    for (const p of spare) p.catch(() => {});
    try {
      const conn = await first;
      return new ServePool(cfg, target, opts, connector, conn, spare);
    } catch (err) {
      await Promise.all(
        spare.map((p) =>
          p.then(
            (c) => c.destroy(),
            () => {},
          ),
        ),
      );
      throw err;
    }
  }

  /** Direct when asked for and the first connection got it (the others follow its verdict). */
  get plane(): 'ssh' | 'direct' {
    const wanted = this.opts.direct === true || (this.opts.direct === 'auto' && this.connector.autoDirect);
    return wanted && !this.connector.directDown ? 'direct' : 'ssh';
  }

  get caps(): number {
    return this.control.caps;
  }

  get directUnavailable(): string | undefined {
    return this.connector.directDown ? this.connector.downWhy : undefined;
  }

  async stat(path: string): Promise<StatResult | null> {
    try {
      return await this.onControl((c) => c.stat(path));
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async list(path: string): Promise<ListEntry[]> {
    return this.onControl((c) => c.list(path));
  }

  /** Mkdir makes what is missing and accepts a directory that exists: safe to send again. */
  async mkdirs(paths: readonly string[]): Promise<void> {
    await this.onControl((c) => Promise.all(paths.map((p) => c.mkdir(p))));
  }

  hashRange(path: string, offset: number, limit: number | null): Promise<string> {
    return this.onControl((c) => c.hash(path, offset, limit));
  }

  async hashFiles(paths: readonly string[]): Promise<(string | Error)[]> {
    return this.onControl(async (c) => {
      const out = await Promise.all(paths.map((p) => c.hash(p).catch((e: Error) => e)));
      // Errors from a lost connection are not answers: ask them all again on a new one.
      if (c.failure && out.some((h) => h instanceof Error && h === c.failure)) throw c.failure;
      return out;
    });
  }

  /**
   * Runs `text` under sh on the remote. Tried again only when ssh itself failed (exit 255)
   * before the script printed anything: every script we send is safe to run twice (attrs,
   * links, removals, and publishing, whose second run reports each file as it finds it).
   */
  async script(text: ShText): Promise<string> {
    // Taken once, before any try: a closed master refuses at once (no retries of that).
    const extra = this.scripts.options;
    const r = await withRetries(
      this.connector.retries,
      async () => {
        const r = await runRemote(this.cfg, this.target, 'sh -s', {
          input: text.text,
          extra,
        });
        if (r.code === 255 && r.stdout.length === 0)
          throw new SshError(`ssh to ${this.target.host} failed: ${lastLine(r.stderr) ?? 'exit 255'}`);
        return r;
      },
      this.connector.stopped,
    );
    if (r.code !== 0)
      throw new RemoteError(`remote command failed: ${lastLine(r.stderr) ?? `exit ${r.code}`}`);
    return r.stdout.toString('utf8');
  }

  /**
   * Runs one control request (or a group of them), on a new control connection when the one
   * it ran on was lost: each of these requests asks or makes what it would again (Stat, List,
   * Hash, Mkdir), so a second try is safe.
   */
  private async onControl<T>(fn: (c: ServeClient) => Promise<T>): Promise<T> {
    return withRetries(
      this.connector.retries,
      async () => {
        const c = await this.controlClient();
        try {
          return await fn(c);
        } catch (err) {
          // A request that failed because its connection went: the connection's reason.
          throw c.failure && isTransient(c.failure) ? c.failure : err;
        }
      },
      this.connector.stopped,
    );
  }

  async upload(queue: WorkQueue<PutItem>, cb: BatchCallbacks<PutItem>): Promise<void> {
    // sync's changed files: only the ranges that differ travel (delta.ts), over all connections.
    const deltas = queue.extract((it) => it.delta !== undefined && !it.resume);
    for (const item of deltas)
      if (item.delta) cb.onFileDone?.(await putDelta(this.stripeHost(), { ...item, delta: item.delta }, cb));
    if (this.connections > 1) {
      const big = queue.extract((it) => stripes(it.size ?? 0, this.connections, it.resume));
      for (const item of big) cb.onFileDone?.(await putStriped(this.stripeHost(), item, cb));
    }
    // Rule 17.3: a server that found a corrupt block in its store asks for the file without dedup.
    const resend = (r: FileResult<PutItem>): PutItem | null =>
      r.error instanceof RemoteError && /without dedup/.test(r.error.message) && !r.item.noDedup
        ? { ...r.item, noDedup: true }
        : null;
    // A file lost with its connection goes back marked: its earlier try may have published it.
    await this.runWorkers(queue, cb, putFiles, resend, (item) => ({ ...item, afterLoss: true }));
  }

  async download(queue: WorkQueue<GetItem>, cb: BatchCallbacks<GetItem>): Promise<void> {
    const deltas = queue.extract((it) => it.delta !== undefined && !it.resume);
    for (const item of deltas)
      if (item.delta) cb.onFileDone?.(await getDelta(this.stripeHost(), { ...item, delta: item.delta }, cb));
    if (this.connections > 1) {
      const big = queue.extract((it) => stripes(it.size, this.connections, it.resume));
      for (const item of big) cb.onFileDone?.(await getStriped(this.stripeHost(), item, cb));
    }
    await this.runWorkers(queue, cb, getFiles);
  }

  /** What the striping and delta flows (stripe.ts, delta.ts) need from the pool. */
  private stripeHost(): DeltaHost {
    return {
      script: (text) => this.script(text),
      connections: this.connections,
      caps: this.caps,
      control: () => this.controlClient(),
      runRanges: (ranges, batch, onBytes) => this.runRanges(ranges, batch, onBytes),
      removeRemote: (p) => this.removeRemote([p]),
      holdTemp: (p) => {
        this.heldTemps.add(p);
        // Once destroyed, destroy() owns the removal: the hold stays for it to see.
        return () => {
          if (!this.destroyed) this.heldTemps.delete(p);
        };
      },
    };
  }

  /** Runs the ranges of one striped file on all connections; throws the first range failure. */
  private async runRanges<F>(
    ranges: RangeItem<F>[],
    batch: RangeBatch<F>,
    onBytes: (n: number, lane?: number) => void,
  ): Promise<void> {
    const queue = new WorkQueue(ranges);
    let failure: Error | null = null;
    await this.runWorkers(
      queue,
      {
        onBytes: (n, _range, lane) => onBytes(n, lane),
        onFileDone: (r) => {
          if (r.error && !failure) {
            failure = r.error;
            queue.drain();
          }
        },
      },
      batch,
    );
    if (failure) throw failure;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.spare);
    await Promise.all([...this.open].map((c) => c.close()));
    this.open.clear();
    await this.scripts.close();
  }

  destroy(): Promise<void> {
    this.destroying ??= this.destroyOnce();
    return this.destroying;
  }

  private async destroyOnce(): Promise<void> {
    this.destroyed = true;
    await Promise.allSettled(this.spare);
    await Promise.all([...this.open].map((c) => c.destroy('Interrupted')));
    this.open.clear();
    // Given up with Ctrl-C, as rsync without --partial: no part file stays behind.
    if (this.heldTemps.size > 0) await this.removeRemote([...this.heldTemps]);
    await this.scripts.close();
  }

  /** Removes remote temp files (the protocol has no delete), bounded: an unreachable host must not hold up the exit. */
  private async removeRemote(paths: string[]): Promise<void> {
    await within(REMOVE_TEMP_MS, this.script(sh`rm -f -- ${paths}\n`)).catch(() => {});
  }

  /** The control connection, replaced if a failed Put poisoned it. */
  private async controlClient(): Promise<ServeClient> {
    if (this.control.failure && !this.destroyed) {
      this.open.delete(this.control);
      this.control = await this.connect(true);
    }
    return this.control;
  }

  /** Worker `index`'s connection: the one it had while healthy, else a new one. */
  private async slotClient(index: number): Promise<ServeClient> {
    const had = this.slots[index];
    if (had) {
      const c = await had;
      if (!c.failure) return c;
    }
    const fresh = this.connect();
    fresh.catch(() => {});
    this.slots[index] = fresh;
    return fresh;
  }

  private async connect(shared = false): Promise<ServeClient> {
    if (this.destroyed) throw new ConnectionClosedError('Interrupted');
    const { client } = await this.connector.connect(shared);
    if (this.destroyed) {
      await client.destroy('Interrupted');
      throw new ConnectionClosedError('Interrupted');
    }
    this.open.add(client);
    return client;
  }

  /**
   * Runs `batch` on every connection, each taking items from `queue`. A connection lost under
   * its files is replaced (Connector.connect tries with backoff) and its files go back to the
   * queue as `lostAs` makes them; a worker gives up after `--retries` losses in a row with no
   * file completed between them, leaving its files to the others.
   */
  private async runWorkers<T>(
    queue: WorkQueue<T>,
    cb: BatchCallbacks<T>,
    batch: (c: ServeClient, items: Iterable<T>, cb: BatchCallbacks<T>) => Promise<FileResult<T>[]>,
    retryAs: (r: FileResult<T>) => T | null = () => null,
    lostAs: (item: T) => T = (item) => item,
  ): Promise<void> {
    let lastError: Error | null = null;
    const retries = this.connector.retries;
    const worker = async (index: number): Promise<void> => {
      let client: ServeClient | null = null;
      let losses = 0;
      while (queue.remaining > 0 && !this.destroyed) {
        try {
          client = index === 0 ? await this.controlClient() : await this.slotClient(index);
        } catch (err) {
          // Connecting was tried with backoff already: this worker's files go to the others.
          lastError = err as Error;
          return;
        }
        const retrying = losses < retries;
        const c = client;
        await batch(client, queue, {
          onBytes: (n, item) => cb.onBytes?.(n, item, index),
          onFileDone: (r) => {
            if (!r.error) losses = 0;
            const again = r.error && !this.destroyed ? retryAs(r) : null;
            if (again) {
              cb.onBytes?.(-r.bytes, r.item);
              queue.putBack(again);
              return;
            }
            // Lost with the connection (closed, or cut inside a frame), not refused by the
            // server: another try on a new connection. Not after a tampered record (it would
            // only be tampered again) nor a stalled peer (each try would wait the timeout again).
            const lost =
              (r.error instanceof ConnectionClosedError || (r.error !== null && r.error === c.failure)) &&
              worthAnotherConnection(c.failure);
            if (lost && retrying && !this.destroyed) {
              cb.onBytes?.(-r.bytes, r.item);
              queue.putBack(lostAs(r.item));
              return;
            }
            if (lost && r.error) gaveUp(r.error, losses + 1);
            cb.onFileDone?.(r);
          },
        });
        if (!client.failure) return;
        losses++;
        lastError = gaveUp(client.failure, losses);
        if (index > 0) {
          this.open.delete(client);
          await client.destroy();
        }
        if (!retrying || !worthAnotherConnection(client.failure)) return;
        await sleep(backoffMs(losses));
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.connections) }, (_, i) => worker(i)));
    const left = queue.drain();
    for (const item of left) {
      cb.onFileDone?.(
        fileResult(item, -1, {
          error: lastError ?? new ConnectionClosedError('No connection left to send this file'),
        }),
      );
    }
  }
}

/**
 * A connection that failed under its files is replaced, whatever ended it (reset, closed, cut
 * mid-frame, a killed peer), except a tampered record (it would only be tampered again) and a
 * stalled peer (each try would wait the timeout again).
 */
function worthAnotherConnection(failure: Error | null): boolean {
  return !(failure instanceof AeadError) && !(failure instanceof TimeoutError);
}

function lastLine(text: string): string | undefined {
  return text.trim().split('\n').filter(Boolean).pop();
}

/** -P auto or --direct auto: the extra connections wait for `prepare`. */
function decidedLater(o: PoolOptions): boolean {
  return o.connections === 'auto' || o.direct === 'auto';
}

/** `p`, or a rejection once `ms` have passed. */
function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
