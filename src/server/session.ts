/**
 * One `bcmr serve` session: handshake, then requests served strictly one at a time in
 * arrival order (PROTOCOL.md sections 4, 6, 13). A handler's failure is answered with an
 * Error frame and the session goes on; a malformed stream (ProtocolError) ends it.
 */
import { appendFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { codecFor, RUNTIME_CAPS } from '../codec/block.js';
import { ProtocolError } from '../errors.js';
import { Cap, PROTOCOL_VERSION } from '../protocol/constants.js';
import { type ChunkMemory, MessageReader } from '../protocol/message_reader.js';
import type { ClientMessage } from '../protocol/messages.js';
import { FrameSink } from '../transport/frame_sink.js';
import { BlockBuffers } from '../util/file_blocks.js';
import { Cas, defaultCasDir } from './cas.js';
import { errorLine, type SessionContext } from './context.js';
import { Rendezvous } from './direct.js';
import { handleMkdir, handleTruncate } from './handlers/fs_ops.js';
import { handleGet, handleGetChunked } from './handlers/get.js';
import { handlePut, handlePutChunked } from './handlers/put.js';
import { handleHash, handleList, handleResume, handleStat } from './handlers/query.js';
import { PathGuard } from './path_guard.js';

/** Longest a reply waits in the sink while requests keep coming (see the session loop). */
const REPLY_DELAY_MS = 50;
/**
 * What this server offers over ssh or stdio: every bit its runtime can serve (RUNTIME_CAPS)
 * but AEAD (no direct key there).
 */
const SERVER_OFFER = RUNTIME_CAPS & ~Cap.AEAD;
/** On a direct session: AEAD, and no further rendezvous from there. */
const DIRECT_OFFER = RUNTIME_CAPS & ~Cap.DIRECT_TCP;

export interface ServeOptions {
  root: string;
  casDir?: string;
  /** This session runs on an authenticated direct socket: AEAD is mandatory. */
  direct?: boolean;
  /** The input's chunks are reused memory (see MessageReader's `memory`). */
  memory?: ChunkMemory;
}

type Handler = (ctx: SessionContext, m: ClientMessage) => Promise<void>;

function h<T extends ClientMessage['type']>(
  fn: (ctx: SessionContext, m: Extract<ClientMessage, { type: T }>) => Promise<void>,
): Handler {
  return fn as Handler;
}

/**
 * What answers each request. Every client message type has an entry, so a new one fails to
 * compile until it is handled; `null` for those that are not requests on their own (the
 * handshake, a Put's data and its end, the direct-plane frames the session handles itself).
 */
const HANDLERS: Record<ClientMessage['type'], Handler | null> = {
  Hello: null,
  Done: null,
  HaveBlocks: null,
  AuthHello: null,
  OpenDirectChannel: null,
  Stat: h(handleStat),
  List: h(handleList),
  Hash: h(handleHash),
  Get: h(handleGet),
  Put: h(handlePut),
  Mkdir: h(handleMkdir),
  Resume: h(handleResume),
  Truncate: h(handleTruncate),
  PutChunked: h(handlePutChunked),
  GetChunked: h(handleGetChunked),
};

/**
 * Runs a session until the client closes its side. Resolves on a clean end; rejects with
 * ProtocolError on a malformed stream or a failed handshake.
 */
export async function serveSession(
  input: AsyncIterable<Uint8Array>,
  output: Writable,
  opts: ServeOptions,
): Promise<void> {
  const guard = await PathGuard.create(opts.root);
  // Raw Data pieces go to disk as they arrive (hot in cache); only dedup gathers blocks.
  const reader = new MessageReader(input, { splitData: true, memory: opts.memory });
  const sink = new FrameSink(output);
  let rendezvous: Rendezvous | null = null;
  try {
    const hello = await reader.next();
    if (hello === null) return;
    if (hello.type !== 'Hello') {
      sink.send({ type: 'Error', message: `expected Hello, got ${hello.type}` });
      await sink.flush().catch(() => {});
      throw new ProtocolError(`expected Hello, got ${hello.type}`);
    }
    if (hello.version !== PROTOCOL_VERSION) {
      const msg = `protocol version mismatch: client=${hello.version} server=${PROTOCOL_VERSION}`;
      sink.send({ type: 'Error', message: msg });
      await sink.flush().catch(() => {});
      throw new ProtocolError(msg);
    }
    if (opts.direct && (hello.caps & Cap.AEAD) === 0) {
      const msg = 'direct-TCP transport requires CAP_AEAD; refusing an unencrypted session';
      sink.send({ type: 'Error', message: msg });
      await sink.flush().catch(() => {});
      throw new ProtocolError(msg);
    }
    const caps = (opts.direct ? DIRECT_OFFER : SERVER_OFFER) & hello.caps;
    const trace = traceTo(process.env.BCMR_SERVE_LOG, opts.direct ? 'direct ' : '');
    trace?.(`session caps=0x${caps.toString(16).padStart(2, '0')}`);
    if ((caps & Cap.DIRECT_TCP) !== 0) {
      rendezvous = new Rendezvous(
        (input, output) => serveSession(input, output, { ...opts, direct: true, memory: undefined }),
        (line) => process.stderr.write(`${line}\n`),
      );
    }
    sink.send({ type: 'Welcome', version: PROTOCOL_VERSION, caps });
    await sink.flush();
    let cas: Cas | null = null;
    const ctx: SessionContext = {
      guard,
      reader,
      sink,
      caps,
      codec: codecFor(caps),
      cas: () => {
        cas ??= new Cas(opts.casDir ?? defaultCasDir(), guard.root);
        return cas;
      },
      discardNextDone: false,
      buffers: new BlockBuffers(READ_BLOCK),
      sync: (caps & Cap.SYNC) !== 0,
      fast: (caps & Cap.FAST) !== 0,
    };
    let flushedAt = performance.now();
    for (;;) {
      // Replies wait in the sink while more requests are already read (one write for a
      // pipelined batch); before waiting for the peer, everything owed is written. Flushing
      // here, not after each handler, covers every path to the wait (a discarded Done too).
      // A client that never lets the input run dry (a long stream of small files) still
      // hears of each file within REPLY_DELAY_MS: its progress and memory depend on it.
      const now = performance.now();
      if (reader.buffered === 0 || now - flushedAt > REPLY_DELAY_MS) {
        await sink.flush();
        flushedAt = now;
      } else await sink.flushIfFull();
      const m = await reader.next();
      if (m === null) break;
      if (ctx.discardNextDone) {
        ctx.discardNextDone = false;
        if (m.type === 'Done') continue;
      }
      trace?.(m.type);
      const handler = m.type in HANDLERS ? HANDLERS[m.type as ClientMessage['type']] : null;
      if (m.type === 'OpenDirectChannel' && rendezvous) {
        try {
          const { addr, sessionKey } = await rendezvous.open();
          sink.send({ type: 'DirectChannelReady', addr, sessionKey });
        } catch (err) {
          sink.send({ type: 'Error', message: errorLine(err) });
        }
      } else if (!handler) {
        sink.send({ type: 'Error', message: `unexpected message: ${m.type}` });
      } else {
        try {
          await handler(ctx, m as ClientMessage);
        } catch (err) {
          if (err instanceof ProtocolError) throw err;
          sink.send({ type: 'Error', message: errorLine(err) });
        }
      }
    }
    await sink.flush();
  } finally {
    // Listeners nobody connected to close with the session; direct sessions already running
    // (or proving their key) go on until their client ends them, and this session's output
    // stays open until then (see Rendezvous.settled).
    guard.close();
    const r = rendezvous as Rendezvous | null;
    r?.closeAll();
    await r?.settled();
    output.end();
  }
}

/**
 * Read size for Get and Hash. Blocks may be smaller than 4 MiB (PROTOCOL.md section 7); 1 MiB
 * reads measured ~8 % faster over ssh here than 4 MiB ones (less data cold in cache by the
 * time it is written to the pipe).
 */
const READ_BLOCK = 1 << 20;

/**
 * `BCMR_SERVE_LOG=FILE`: one line per session and per request type received (not data frames),
 * appended synchronously. A diagnostic aid, also how tests see what a client asked for.
 */
function traceTo(file: string | undefined, prefix: string): ((line: string) => void) | null {
  if (!file) return null;
  return (line) => {
    if (line === 'Data' || line === 'DataCompressed') return;
    try {
      appendFileSync(file, `${process.pid} ${prefix}${line}\n`);
    } catch {
      // Diagnostics must never break a session.
    }
  };
}
