/**
 * The plain frames of a direct rendezvous (PROTOCOL.md section 12): AuthChallenge from the
 * server, AuthHello from the client, both `len 33 | type | 32 bytes`. Read straight off the
 * socket before the record layer takes over; whatever follows them (a pipelined Hello) is
 * put back for the session.
 */
import type net from 'node:net';
import { decodeFrame } from '../protocol/codec.js';
import type { Message } from '../protocol/messages.js';

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
