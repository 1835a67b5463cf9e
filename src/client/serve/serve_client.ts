/**
 * A client of `bcmr serve` over any byte channel, with request pipelining.
 *
 * There are no request ids on the wire: the server answers strictly in order, so every
 * request sent pushes a `Pending` on a FIFO and the reader loop hands each reply frame to the
 * head of it. Sends are serialised (a Put's data frames must follow it directly) and at most
 * `window` requests are in flight. An Error in reply to a Put poisons the connection
 * (PROTOCOL.md section 13: a foreign server may read our remaining data as requests): every
 * pending request fails and the channel is closed. Errors in reply to other requests fail
 * only that request.
 */
import { type Codec, codecFor, decodeBlock } from '../../codec/block.js';
import {
  ConnectionClosedError,
  DowngradeError,
  ProtocolError,
  RemoteError,
  TimeoutError,
} from '../../errors.js';
import { Cap, MAX_BLOCK, PROTOCOL_VERSION } from '../../protocol/constants.js';
import { MessageReader } from '../../protocol/message_reader.js';
import { type ClientMessage, isData, type ListEntry, type Message } from '../../protocol/messages.js';
import type { ByteChannel } from '../../transport/channel.js';
import { FrameSink } from '../../transport/frame_sink.js';
import { RELEASED, type Release } from '../../util/file_blocks.js';

/** What the Rust client asks for by default. */
export const DEFAULT_CLIENT_CAPS = Cap.LZ4 | Cap.ZSTD | Cap.DEDUP | Cap.PUT_OFFSET;

export interface ConnectOptions {
  caps?: number;
  /** Requests in flight at most (default 1024). */
  window?: number;
  /**
   * The connection fails when, with a request outstanding, no byte has moved either way for
   * this long (default 60 s, `--timeout`): a stalled or stopped peer ends in one clear error,
   * never a hang. Counted from the last byte, so a slow but moving link never trips it.
   */
  idleMs?: number;
  /** `--bwlimit`: both directions of this connection draw from it (rate_limit.ts). */
  bwlimit?: RateLimiter;
}

const DEFAULT_IDLE_MS = 60_000;

import type { StatResult } from '../../core/items.js';
import { limitChannel, type RateLimiter } from '../../transport/rate_limit.js';

export interface PutOptions {
  size: number;
  offset?: number;
  overwrite?: boolean;
  /** Block hashes (32 bytes each, 4 MiB blocks) to offer through dedup; needs DEDUP. */
  dedupHashes?: Uint8Array;
}

/** Feeds a Put's content: calls `emit` for each block in order (at most 4 MiB each). */
export type Producer = (emit: (block: Uint8Array) => Promise<Release>) => Promise<unknown>;

export interface PutTicket {
  /** Resolves with the server's Ok hash (null with offset > 0) once the server has replied. */
  readonly done: Promise<string | null>;
  /** Blocks the server already had (dedup); 0 without dedup. */
  readonly skippedBlocks: number;
  /** Bytes in those blocks, which did not cross the wire. */
  readonly skippedBytes: number;
}

interface Pending {
  /** The request's type, for a timeout's message. */
  what: string;
  /** Handles one reply frame; resolves true when the reply is complete. */
  onMessage(m: Message): boolean | Promise<boolean>;
  fail(err: Error): void;
  /** Set when `onMessage` threw: later frames of this reply are dropped until it ends. */
  discarding?: boolean;
}

function isTerminal(m: Message): boolean {
  return !isData(m) && m.type !== 'MissingBlocks';
}

function unexpected(m: Message, wanted: string): ProtocolError {
  return new ProtocolError(`Expected ${wanted}, got ${m.type}`);
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

export class ServeClient {
  private readonly pending: Pending[] = [];
  private pendingHead = 0;
  private poisonedBy: Error | null = null;
  /** close() was called: the end of the stream is expected. */
  private closing = false;
  private tail: Promise<void> = Promise.resolve();
  private flushScheduled = false;
  private readonly waiters: (() => void)[] = [];
  private readonly readLoop: Promise<void>;
  readonly codec: Codec;
  /** The limiter this connection draws from; a direct session beside it uses the same. */
  bwlimit: RateLimiter | undefined;
  /** When a byte last moved either way (see ConnectOptions.idleMs). */
  private lastActivity = Date.now();
  private readonly watchdog: NodeJS.Timeout;

  private constructor(
    private readonly channel: ByteChannel,
    private readonly reader: MessageReader,
    private readonly sink: FrameSink,
    /** Effective capabilities from Welcome. */
    readonly caps: number,
    private readonly window: number,
    /** The idle timeout this connection runs with (a direct session beside it takes the same). */
    readonly idleMs: number,
  ) {
    this.codec = codecFor(caps);
    sink.onWritten = () => {
      this.lastActivity = Date.now();
    };
    this.watchdog = setInterval(() => this.checkIdle(), Math.min(1000, idleMs / 4));
    this.watchdog.unref();
    this.readLoop = this.runReader();
  }

  private checkIdle(): void {
    if (this.poisonedBy || this.inFlight === 0) {
      this.lastActivity = Date.now();
      return;
    }
    const silent = Date.now() - this.lastActivity;
    if (silent < this.idleMs) return;
    const what = this.pending[this.pendingHead]?.what ?? 'a reply';
    this.poison(
      new TimeoutError(
        `server silent for ${Math.round(silent / 1000)} s while waiting for the reply to ${what} (--timeout to change)`,
      ),
    );
    void this.channel.abort().catch(() => {});
  }

  /** Sends Hello, checks Welcome. On failure the channel is closed. */
  static async connect(raw: ByteChannel, opts: ConnectOptions = {}): Promise<ServeClient> {
    const channel = opts.bwlimit ? limitChannel(raw, opts.bwlimit) : raw;
    // Downloads write raw Data pieces as they arrive; nothing on the client counts data frames.
    const reader = new MessageReader(channel.readable, { splitData: true });
    const sink = new FrameSink(channel.writable);
    const asked = opts.caps ?? DEFAULT_CLIENT_CAPS;
    const idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    let timer: NodeJS.Timeout | undefined;
    try {
      sink.send({ type: 'Hello', version: PROTOCOL_VERSION, caps: asked });
      await sink.flush();
      const m = await Promise.race([
        reader.next(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(new TimeoutError(`no Welcome from the server within ${Math.round(idleMs / 1000)} s`)),
            idleMs,
          );
        }),
      ]);
      if (m === null) {
        const why = channel.diagnostics();
        throw new ConnectionClosedError(
          `Server closed the connection before Welcome${why ? `: ${why}` : ''}`,
        );
      }
      if (m.type === 'Error') throw new RemoteError(m.message);
      if (m.type !== 'Welcome') throw unexpected(m, 'Welcome');
      if (m.version !== PROTOCOL_VERSION)
        throw new ProtocolError(`Server speaks protocol ${m.version}, not 2`);
      // A server may only grant what we asked for; anything else is a peer we do not understand
      // (and a server that drops SYNC while claiming more would lose durability silently).
      if ((m.caps & ~asked) !== 0) {
        throw new DowngradeError(
          `server granted capabilities 0x${m.caps.toString(16)} beyond the 0x${asked.toString(16)} asked for`,
        );
      }
      const client = new ServeClient(channel, reader, sink, m.caps, opts.window ?? 1024, idleMs);
      client.bwlimit = opts.bwlimit;
      return client;
    } catch (err) {
      if (err instanceof TimeoutError) await channel.abort().catch(() => {});
      else await channel.close().catch(() => {});
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  get inFlight(): number {
    return this.pending.length - this.pendingHead;
  }

  /** Why the connection can no longer be used, or null. */
  get failure(): Error | null {
    return this.poisonedBy;
  }

  async stat(path: string): Promise<StatResult> {
    return this.simple({ type: 'Stat', path }, (m) => {
      if (m.type !== 'StatResponse') throw unexpected(m, 'StatResponse');
      return { size: m.size, mtime: m.mtime, isDir: m.isDir };
    });
  }

  async list(path: string): Promise<ListEntry[]> {
    return this.simple({ type: 'List', path }, (m) => {
      if (m.type !== 'ListResponse') throw unexpected(m, 'ListResponse');
      return m.entries;
    });
  }

  async hash(path: string, offset = 0, limit: number | null = null): Promise<string> {
    return this.simple({ type: 'Hash', path, offset, limit }, (m) => {
      if (m.type !== 'HashResponse') throw unexpected(m, 'HashResponse');
      return m.hash;
    });
  }

  async mkdir(path: string): Promise<void> {
    await this.simple({ type: 'Mkdir', path }, expectOk);
  }

  async truncate(path: string, size: number): Promise<void> {
    await this.simple({ type: 'Truncate', path, size }, expectOk);
  }

  /** Asks for a direct-TCP rendezvous (needs DIRECT_TCP): where to connect, and the key. */
  async openDirectChannel(): Promise<{ addr: string; sessionKey: Uint8Array }> {
    return this.simple({ type: 'OpenDirectChannel' }, (m) => {
      if (m.type !== 'DirectChannelReady') throw unexpected(m, 'DirectChannelReady');
      return { addr: m.addr, sessionKey: m.sessionKey };
    });
  }

  async resume(path: string): Promise<{ size: number; blockHash: string | null }> {
    return this.simple({ type: 'Resume', path }, (m) => {
      if (m.type !== 'ResumeResponse') throw unexpected(m, 'ResumeResponse');
      return { size: m.size, blockHash: m.blockHash };
    });
  }

  /**
   * Streams `path` from `offset`; `onData` gets each block in order (awaited: a slow sink
   * slows the connection). Resolves with the Ok hash (null under FAST).
   */
  get(path: string, offset: number, onData: (b: Uint8Array) => unknown): Promise<string | null> {
    return this.streamed({ type: 'Get', path, offset }, onData);
  }

  /** Streams exactly `[offset, offset + length)` of `path`. */
  async getChunked(
    path: string,
    offset: number,
    length: number,
    onData: (b: Uint8Array) => unknown,
  ): Promise<void> {
    await this.streamed({ type: 'GetChunked', path, offset, length }, onData);
  }

  /**
   * Sends a Put and its data; resolves once everything is written, with a ticket whose `done`
   * settles on the server's reply. Later requests may be sent before `done` settles.
   */
  beginPut(path: string, opts: PutOptions, produce: Producer): Promise<PutTicket> {
    return this.exclusive(async () => {
      const offset = opts.offset ?? 0;
      const reply = deferred<string | null>();
      const missing = deferred<Uint8Array | null>();
      const dedup = opts.dedupHashes !== undefined && offset === 0;
      let awaitingMissing = dedup;
      await this.slot();
      this.pushPending({
        what: 'Put',
        onMessage: (m) => {
          if (m.type === 'Error') {
            const err = new RemoteError(m.message);
            reply.reject(err);
            missing.reject(err);
            // The server may now read our remaining data frames as requests.
            this.poison(new ConnectionClosedError(`Connection aborted after a failed Put: ${m.message}`));
            return true;
          }
          if (awaitingMissing) {
            if (m.type !== 'MissingBlocks') throw unexpected(m, 'MissingBlocks');
            awaitingMissing = false;
            missing.resolve(m.bitmap);
            return false;
          }
          if (m.type !== 'Ok') throw unexpected(m, 'Ok');
          reply.resolve(m.hash);
          return true;
        },
        fail: (err) => {
          reply.reject(err);
          missing.reject(err);
        },
      });
      this.sink.send({ type: 'Put', path, size: opts.size, offset, overwrite: opts.overwrite ?? true });
      let wanted: ((i: number) => boolean) | null = null;
      let skipped = 0;
      let skippedBytes = 0;
      if (dedup && opts.dedupHashes) {
        this.sink.send({ type: 'HaveBlocks', blockSize: MAX_BLOCK, hashes: opts.dedupHashes });
        await this.sink.flush();
        const bitmap = await missing.promise;
        const bits = bitmap ?? new Uint8Array();
        wanted = (i) => ((bits[i >> 3] ?? 0) & (1 << (i & 7))) !== 0;
        const count = opts.dedupHashes.length / 32;
        for (let i = 0; i < count; i++) {
          if (wanted(i)) continue;
          skipped++;
          skippedBytes += Math.min(MAX_BLOCK, opts.size - i * MAX_BLOCK);
        }
      }
      let index = 0;
      await produce(async (block) => {
        this.throwIfPoisoned();
        const i = index++;
        if (wanted && !wanted(i)) return RELEASED;
        return this.sink.sendBlock(block, this.codec);
      });
      this.throwIfPoisoned();
      this.sink.send({ type: 'Done' });
      this.scheduleFlush();
      return { done: reply.promise, skippedBlocks: skipped, skippedBytes };
    });
  }

  /** `beginPut` and wait for the reply. */
  async put(path: string, opts: PutOptions, produce: Producer): Promise<string | null> {
    return (await this.beginPut(path, opts, produce)).done;
  }

  /** Sends exactly `length` bytes into `[offset, offset + length)` of `path` (no Done after it). */
  async putChunked(path: string, offset: number, length: number, produce: Producer): Promise<void> {
    const done = await this.exclusive(async () => {
      const reply = deferred<void>();
      await this.slot();
      this.pushPending({
        what: 'PutChunked',
        onMessage: (m) => {
          if (m.type === 'Error') reply.reject(new RemoteError(m.message));
          else if (m.type === 'Ok') reply.resolve();
          else throw unexpected(m, 'Ok');
          return true;
        },
        fail: (err) => reply.reject(err),
      });
      this.sink.send({ type: 'PutChunked', path, offset, length });
      await produce(async (block) => {
        this.throwIfPoisoned();
        return this.sink.sendBlock(block, this.codec);
      });
      this.scheduleFlush();
      return { reply: reply.promise };
    });
    await done.reply;
  }

  /** Waits for every request to finish, ends the session and waits for the peer to go. */
  async close(): Promise<void> {
    this.closing = true;
    try {
      await this.tail;
      while (this.inFlight > 0 && !this.poisonedBy) await new Promise<void>((r) => this.waiters.push(r));
      if (!this.poisonedBy) await this.sink.end();
    } catch {
      // Closing is best effort: the connection may already be gone.
    } finally {
      clearInterval(this.watchdog);
      await this.channel.close();
      await this.readLoop;
    }
  }

  /** Aborts at once: pending requests fail, the channel is closed. */
  async destroy(reason = 'Connection closed by the client'): Promise<void> {
    this.poison(new ConnectionClosedError(reason));
    await this.channel.abort();
  }

  private throwIfPoisoned(): void {
    if (this.poisonedBy) throw this.poisonedBy;
  }

  private streamed(msg: ClientMessage, onData: (b: Uint8Array) => unknown): Promise<string | null> {
    return this.request<string | null>(msg, async (m, reply) => {
      if (isData(m)) {
        await onData(decodeBlock(m));
        return false;
      }
      if (m.type === 'Ok') reply.resolve(m.hash);
      else if (m.type === 'Error') reply.reject(new RemoteError(m.message));
      else throw unexpected(m, 'data or Ok');
      return true;
    });
  }

  /** A request answered by exactly one frame. */
  private simple<T>(msg: ClientMessage, parse: (m: Message) => T): Promise<T> {
    return this.request<T>(msg, (m, reply) => {
      if (m.type === 'Error') reply.reject(new RemoteError(m.message));
      else reply.resolve(parse(m));
      return true;
    });
  }

  /**
   * Sends `msg` in turn and settles with what `handle` resolves; `handle` sees each reply frame
   * and returns true on the last one.
   */
  private request<T>(
    msg: ClientMessage,
    handle: (m: Message, reply: Deferred<T>) => boolean | Promise<boolean>,
  ): Promise<T> {
    return this.exclusive(async () => {
      const reply = deferred<T>();
      await this.slot();
      this.pushPending({
        what: msg.type,
        onMessage: (m) => handle(m, reply),
        fail: (err) => reply.reject(err),
      });
      this.sink.send(msg);
      this.scheduleFlush();
      // Wrapped so the write side is released now, not when the reply arrives.
      return { reply: reply.promise };
    }).then((w) => w.reply);
  }

  /** Runs `fn` with exclusive use of the write side, in call order. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => {
      release = r;
    });
    return (async () => {
      try {
        await prev;
        this.throwIfPoisoned();
        return await fn();
      } finally {
        release();
      }
    })();
  }

  private async slot(): Promise<void> {
    while (this.inFlight >= this.window) {
      this.throwIfPoisoned();
      await this.sink.flush();
      await new Promise<void>((r) => this.waiters.push(r));
    }
    this.throwIfPoisoned();
  }

  private pushPending(p: Pending): void {
    this.pending.push(p);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.sink.flush().catch((err: Error) => this.poison(err));
    });
  }

  private wake(): void {
    const ws = this.waiters.splice(0);
    for (const w of ws) w();
  }

  private async runReader(): Promise<void> {
    try {
      for (;;) {
        const m = await this.reader.next();
        this.lastActivity = Date.now();
        if (m === null) {
          // Also when nothing was asked: a connection lost while idle must say so before the
          // next request is sent into it (and waits for an answer that cannot come).
          if (this.inFlight > 0 || (!this.poisonedBy && !this.closing)) {
            const why = this.channel.diagnostics();
            throw new ConnectionClosedError(`Server closed the connection${why ? `: ${why}` : ''}`);
          }
          return;
        }
        const p = this.pending[this.pendingHead];
        if (!p) throw new ProtocolError(`Unsolicited ${m.type} from the server`);
        let done: boolean;
        if (p.discarding) {
          done = isTerminal(m);
        } else {
          try {
            done = await p.onMessage(m);
          } catch (err) {
            if (err instanceof ProtocolError) throw err;
            // A local failure (e.g. disk full) fails this request; its remaining frames are dropped.
            p.fail(err as Error);
            p.discarding = true;
            done = isTerminal(m);
          }
        }
        if (done) {
          this.pending[this.pendingHead++] = undefined as unknown as Pending;
          if (this.pendingHead > 4096 && this.pendingHead * 2 > this.pending.length) {
            this.pending.splice(0, this.pendingHead);
            this.pendingHead = 0;
          }
          this.wake();
        }
      }
    } catch (err) {
      this.poison(err as Error);
    }
  }

  private poison(err: Error): void {
    if (this.poisonedBy) return;
    this.poisonedBy = err;
    clearInterval(this.watchdog);
    const left = this.pending.splice(this.pendingHead);
    this.pending.length = 0;
    this.pendingHead = 0;
    for (const p of left) p?.fail(err);
    this.wake();
    void this.channel.close().catch(() => {});
  }
}

function expectOk(m: Message): void {
  if (m.type !== 'Ok') throw unexpected(m, 'Ok');
}
