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

const TAG = 16;

export function recordNonce(direction: DirectionId, counter: bigint): Buffer {
  const n = Buffer.alloc(12);
  n[0] = direction;
  n.writeBigUInt64LE(counter, 1);
  return n;
}

/** Seals one plain frame (length prefix included) into a record. */
export function sealRecord(
  key: Uint8Array,
  direction: DirectionId,
  counter: bigint,
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
  counter: bigint,
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
