/**
 * AEAD records of the direct data plane (PROTOCOL.md section 12):
 *
 *   +-------------+-----------------------------------------------+
 *   | n: u32 LE   | AES-256-GCM(key, nonce, plain frame) || tag(16) |
 *   +-------------+-----------------------------------------------+
 *
 * n = ciphertext length + 16. Nonce: byte 0 = direction (1 client->server, 2 server->client),
 * bytes 1-8 = per-direction record counter (u64 LE from 0), bytes 9-11 = 0. Empty AAD.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { ProtocolError } from '../errors.js';
import { MAX_FRAME_LEN } from './constants.js';

export const Direction = { clientToServer: 1, serverToClient: 2 } as const;
export type DirectionId = (typeof Direction)[keyof typeof Direction];

export const TAG_BYTES = 16;
const TAG = TAG_BYTES;

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

/** Seals one plain frame (length prefix included) into a record. */
export function sealRecord(
  key: Uint8Array,
  direction: DirectionId,
  counter: number,
  frame: Uint8Array,
): Buffer {
  const c = createCipheriv('aes-256-gcm', key, recordNonce(direction, counter));
  const body = c.update(frame);
  c.final();
  const out = Buffer.allocUnsafe(4 + body.length + TAG);
  out.writeUInt32LE(body.length + TAG, 0);
  out.set(body, 4);
  out.set(c.getAuthTag(), 4 + body.length);
  return out;
}

/** Opens a record's payload (`n` bytes after its length); a tag failure is fatal. */
export function openRecord(
  key: Uint8Array,
  direction: DirectionId,
  counter: number,
  payload: Uint8Array,
): Buffer {
  if (payload.length < TAG || payload.length > MAX_FRAME_LEN + TAG) {
    throw new ProtocolError(`AEAD record length ${payload.length} out of range`);
  }
  const d = createDecipheriv('aes-256-gcm', key, recordNonce(direction, counter));
  d.setAuthTag(payload.subarray(payload.length - TAG));
  const plain = d.update(payload.subarray(0, payload.length - TAG));
  try {
    d.final();
  } catch {
    throw new ProtocolError('AEAD record failed authentication');
  }
  return plain;
}
