/** BLAKE3 helpers over @napi-rs/blake-hash (digests checked against PROTOCOL.md's vectors in tests). */
import { Blake3Hasher, blake3 } from '@napi-rs/blake-hash';

export { Blake3Hasher };

export function blake3Hex(data: Uint8Array): string {
  return blake3(data).toString('hex');
}

export function blake3Raw(data: Uint8Array): Buffer {
  return blake3(data);
}

/** MAC of a direct-channel challenge: BLAKE3-keyed(key, "bcmr-direct-v1" || nonce). */
export function directMac(sessionKey: Uint8Array, nonce: Uint8Array): Buffer {
  const h = Blake3Hasher.newKeyed(Buffer.from(sessionKey));
  h.update(Buffer.from('bcmr-direct-v1', 'ascii'));
  h.update(nonce);
  return h.digestBuffer();
}
