/**
 * BLAKE3, chosen once per process: the native binding of @napi-rs/blake-hash for this platform
 * (one optional package per platform, all pinned, so every platform's lockfile carries them),
 * else hash-wasm's portable WebAssembly build. `BCMR_PORTABLE=1` forces the portable one (CI
 * tests it; it is also what a bundled server on a remote Node runs). Both are checked against
 * PROTOCOL.md's vectors in tests; `bcmr --version` says which one runs.
 */
import { createRequire } from 'node:module';
import type { IHasher } from 'hash-wasm';

export interface Blake3Hasher {
  update(input: string | Uint8Array): this;
  digest(format?: 'hex'): string;
  digestBuffer(): Buffer;
  /** Back to the hash of no bytes (for reuse). The native one returns nothing. */
  reset(): void;
}

export interface Blake3Impl {
  /** e.g. `native linux-x64-gnu` or `portable wasm`. */
  readonly name: string;
  hasher(): Blake3Hasher;
  hash(data: Uint8Array): Buffer;
  /** Keyed BLAKE3 of the parts, in order (the direct plane's MAC). */
  keyed(key: Uint8Array, parts: readonly Uint8Array[]): Promise<Buffer>;
}

interface Binding {
  Blake3Hasher: { new (): Blake3Hasher; newKeyed(key: Buffer): Blake3Hasher };
  blake3(input: Uint8Array): Buffer;
}

/**
 * The platform package names the native binding may have here, as napi-rs names them, most
 * likely first. On Linux both C libraries are tried (gnu, then musl) instead of asking
 * process.report which one runs: that report costs milliseconds of every start, and a package
 * built for the other libc is either not installed or fails to load.
 */
function platformTriples(): string[] {
  const { platform, arch } = process;
  if (platform === 'linux') return [`linux-${arch}-gnu`, `linux-${arch}-musl`];
  if (platform === 'win32') return [`win32-${arch}-msvc`];
  return [`${platform}-${arch}`];
}

/** The native binding, or null when this platform has none installed (or it fails to load). */
export function nativeImpl(): Blake3Impl | null {
  const require = createRequire(import.meta.url);
  for (const triple of platformTriples()) {
    let binding: Binding;
    try {
      binding = require(`@napi-rs/blake-hash-${triple}`) as Binding;
    } catch {
      continue;
    }
    return {
      name: `native ${triple}`,
      hasher: () => new binding.Blake3Hasher(),
      hash: (data) => binding.blake3(data),
      keyed: async (key, parts) => {
        const h = binding.Blake3Hasher.newKeyed(Buffer.from(key));
        for (const p of parts) h.update(p);
        return h.digestBuffer();
      },
    };
  }
  return null;
}

/**
 * hash-wasm's BLAKE3. Its hashers are created asynchronously (one WebAssembly instance each),
 * ours synchronously and in any number: one instance serves every hasher, each keeping its own
 * saved state (save/load around each call; the state is a few KiB, each call hashes up to
 * 4 MiB).
 */
export async function portableImpl(): Promise<Blake3Impl> {
  // Loaded only here: most processes run the native binding and need none of hash-wasm.
  const { createBLAKE3 } = await import('hash-wasm');
  const engine: IHasher = await createBLAKE3();
  class PortableHasher implements Blake3Hasher {
    private state: Uint8Array | null = null;
    private resume(): IHasher {
      return this.state ? engine.load(this.state) : engine.init();
    }
    update(input: string | Uint8Array): this {
      this.resume().update(input);
      this.state = engine.save();
      return this;
    }
    digest(): string {
      return this.resume().digest('hex');
    }
    digestBuffer(): Buffer {
      return Buffer.from(this.resume().digest('binary'));
    }
    reset(): void {
      this.state = null;
    }
  }
  return {
    name: 'portable wasm',
    hasher: () => new PortableHasher(),
    hash: (data) => Buffer.from(engine.init().update(data).digest('binary')),
    keyed: async (key, parts) => {
      const h = await createBLAKE3(256, key);
      for (const p of parts) h.update(p);
      return Buffer.from(h.digest('binary'));
    },
  };
}

export const PORTABLE_FORCED = process.env.BCMR_PORTABLE === '1';

/** The implementation this process uses. */
export const blake3Impl: Blake3Impl = (!PORTABLE_FORCED && nativeImpl()) || (await portableImpl());

/** A new streaming hasher (`new Blake3Hasher()` in the code that predates the choice). */
export const Blake3Hasher = function Blake3Hasher(): Blake3Hasher {
  return blake3Impl.hasher();
} as unknown as new () => Blake3Hasher;

const spareHashers: Blake3Hasher[] = [];

/**
 * A streaming hasher from a few spares. Each native hasher is an addon object (~10 us to make,
 * and a finalizer for the GC to run): once per small file on both ends of a 10,000-file copy.
 * Give it back with `digestAndRecycle` (or `recycleHasher` when its digest is not wanted) and
 * use it no more.
 */
export function takeHasher(): Blake3Hasher {
  return spareHashers.pop() ?? blake3Impl.hasher();
}

function recycleHasher(h: Blake3Hasher): void {
  if (spareHashers.length >= 16) return;
  h.reset();
  spareHashers.push(h);
}

/** The hasher's hex digest; the hasher goes back to the spares. */
export function digestAndRecycle(h: Blake3Hasher): string {
  const hex = h.digest('hex');
  recycleHasher(h);
  return hex;
}

export function blake3Hex(data: Uint8Array): string {
  return blake3Impl.hash(data).toString('hex');
}

export function blake3Raw(data: Uint8Array): Buffer {
  return blake3Impl.hash(data);
}

const DIRECT_CONTEXT = Buffer.from('bcmr-direct-v1', 'ascii');

/** MAC of a direct-channel challenge: BLAKE3-keyed(key, "bcmr-direct-v1" || nonce). */
export function directMac(
  sessionKey: Uint8Array,
  nonce: Uint8Array,
  impl: Blake3Impl = blake3Impl,
): Promise<Buffer> {
  return impl.keyed(sessionKey, [DIRECT_CONTEXT, nonce]);
}

/** BLAKE3 hex of a local file (or of `limit` bytes from `offset`), read in 4 MiB blocks. */
export async function fileHashHex(path: string, offset = 0, limit: number | null = null): Promise<string> {
  const { FdFile } = await import('../util/fd_file.js');
  const { BlockBuffers, readBlocks, RELEASED } = await import('../util/file_blocks.js');
  const f = FdFile.open(path, 'r');
  try {
    const h = blake3Impl.hasher();
    await readBlocks(f, offset, limit, new BlockBuffers(), (b) => {
      h.update(b);
      return RELEASED;
    });
    return h.digest('hex');
  } finally {
    f.close();
  }
}
