/**
 * Both ends of a direct socket (PROTOCOL.md sections 12 and 16): the plain auth frames of the
 * rendezvous (AuthChallenge from the server, AuthHello from the client, both `len 33 | type |
 * 32 bytes`, read straight off the socket; whatever follows them, a pipelined Hello, is put
 * back for the session), then the record streams the session runs over.
 */
import type net from 'node:net';
import { pipeline } from 'node:stream';
import { Direction } from '../protocol/aead.js';
import { decodeFrame } from '../protocol/codec.js';
import type { Message } from '../protocol/messages.js';
import { RecordOpener, RecordSealer } from './aead_stream.js';

const AUTH_FRAME_BYTES = 4 + 1 + 32;

/** The next auth frame, or why there is none: no bytes in time, the peer closed, or garbage. */
export function readAuthFrame(
  sock: net.Socket,
  ms: number,
): Promise<Message | 'timeout' | 'closed' | 'malformed'> {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    const done = (r: Message | 'timeout' | 'closed' | 'malformed'): void => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
      resolve(r);
    };
    const timer = setTimeout(() => done('timeout'), ms);
    const onClose = (): void => done('closed');
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk]);
      if (got.length < AUTH_FRAME_BYTES) return;
      sock.pause();
      if (got.length > AUTH_FRAME_BYTES) sock.unshift(got.subarray(AUTH_FRAME_BYTES));
      let frame: Message | 'malformed' = 'malformed';
      try {
        if (got.readUInt32LE(0) === AUTH_FRAME_BYTES - 4) frame = decodeFrame(got, 4, AUTH_FRAME_BYTES);
      } catch {
        // A body that does not decode: malformed.
      }
      done(frame);
    };
    sock.on('data', onData);
    sock.on('close', onClose);
  });
}

/**
 * The record streams of an authenticated direct socket, wired both ways (PROTOCOL.md 16):
 * what `side` reads is opened from the peer's direction, what it writes is sealed in its own.
 * The first plain frame each way (Hello, Welcome) is passed through as the protocol says.
 */
export function recordStreams(
  sock: net.Socket,
  key: Uint8Array,
  side: 'client' | 'server',
): { input: RecordOpener; output: RecordSealer } {
  const [inbound, outbound] =
    side === 'client'
      ? [Direction.serverToClient, Direction.clientToServer]
      : [Direction.clientToServer, Direction.serverToClient];
  const input = new RecordOpener(key, inbound, 1);
  const output = new RecordSealer(key, outbound, 1);
  pipeline(sock, input, () => {});
  pipeline(output, sock, () => {});
  return { input, output };
}
