/**
 * AEAD records of the direct data plane (PROTOCOL.md section 12):
 *
 *   +-------------+-----------------------------------------------+
 *   | n: u32 LE   | AES-256-GCM(key, nonce, plain frame) || tag(16) |
 *   +-------------+-----------------------------------------------+
 *
 * n = ciphertext length + 16. Nonce: byte 0 = direction (1 client->server, 2 server->client),
 * bytes 1-8 = per-direction record counter (u64 LE from 0), bytes 9-11 = 0. Empty AAD.
 * Sealing and opening are streams (src/transport/aead_stream.ts); here are the shared parts.
 */
import { ProtocolError } from '../errors.js';

export const Direction = { clientToServer: 1, serverToClient: 2 } as const;
export type DirectionId = (typeof Direction)[keyof typeof Direction];

export const TAG_BYTES = 16;

/**
 * The 12-byte nonce of record `counter`. Counters are exact JS integers: 2^53 records is far
 * beyond any session, and refusing to go past it means a nonce can never repeat.
 */
export function recordNonce(direction: DirectionId, counter: number): Buffer {
  if (!Number.isSafeInteger(counter) || counter < 0 || counter === Number.MAX_SAFE_INTEGER) {
    throw new ProtocolError('AEAD record counter exhausted');
  }
  const n = Buffer.alloc(12);
  n[0] = direction;
  n.writeUInt32LE(counter % 0x1_0000_0000, 1);
  n.writeUInt32LE(Math.floor(counter / 0x1_0000_0000), 5);
  return n;
}
