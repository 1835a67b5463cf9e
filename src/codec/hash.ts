/**
 * BLAKE3 helpers over @napi-rs/blake-hash's native binding (digests checked against
 * PROTOCOL.md's vectors in tests). The platform package is loaded directly: the umbrella
 * package's optional per-platform dependencies are not all on the registry mirror reached here,
 * and `npm ci` refuses a lock file without them.
 */
import { createRequire } from 'node:module';

export interface Blake3Hasher {
  update(input: string | Uint8Array): this;
  digest(format?: string): string;
  digestBuffer(): Buffer;
}

interface Binding {
  Blake3Hasher: { new (): Blake3Hasher; newKeyed(key: Buffer): Blake3Hasher };
  blake3(input: Uint8Array): Buffer;
}

const binding = createRequire(import.meta.url)('@napi-rs/blake-hash-linux-x64-gnu') as Binding;

export const Blake3Hasher = binding.Blake3Hasher;
const blake3 = binding.blake3;

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

/** BLAKE3 hex of a whole local file, read in 4 MiB blocks. */
export async function fileHashHex(path: string): Promise<string> {
  const { FdFile } = await import('../util/fd_file.js');
  const { BlockBuffers, readBlocks, RELEASED } = await import('../util/file_blocks.js');
  const f = FdFile.open(path, 'r');
  try {
    const h = new Blake3Hasher();
    await readBlocks(f, 0, null, new BlockBuffers(), (b) => {
      h.update(b);
      return RELEASED;
    });
    return h.digest('hex');
  } finally {
    f.close();
  }
}
