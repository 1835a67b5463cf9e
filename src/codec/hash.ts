/**
 * BLAKE3, chosen once per process: the native binding of @napi-rs/blake-hash for this platform
 * (one optional package per platform, all pinned, so every platform's lockfile carries them),
 * else hash-wasm's portable WebAssembly build. `BCMR_PORTABLE=1` forces the portable one (CI
 * tests it; it is also what a bundled server on a remote Node runs). Both are checked against
 * PROTOCOL.md's vectors in tests; `bcmr --version` says which one runs.
 */
import { createRequire } from 'node:module';
import { createBLAKE3, type IHasher } from 'hash-wasm';

export interface Blake3Hasher {
  update(input: string | Uint8Array): this;
  digest(format?: 'hex'): string;
  digestBuffer(): Buffer;
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

/** The platform package name of the native binding, as napi-rs names them. */
function platformTriple(): string {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)
      ?.header?.glibcVersionRuntime;
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

/** The native binding, or null when this platform has none installed (or it fails to load). */
export function nativeImpl(): Blake3Impl | null {
  const triple = platformTriple();
  let binding: Binding;
  try {
    binding = createRequire(import.meta.url)(`@napi-rs/blake-hash-${triple}`) as Binding;
  } catch {
    return null;
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

/**
 * hash-wasm's BLAKE3. Its hashers are created asynchronously (one WebAssembly instance each),
 * ours synchronously and in any number: one instance serves every hasher, each keeping its own
 * saved state (save/load around each call; the state is a few KiB, each call hashes up to
 * 4 MiB).
 */
export async function portableImpl(): Promise<Blake3Impl> {
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

/** BLAKE3 hex of a whole local file, read in 4 MiB blocks. */
export async function fileHashHex(path: string): Promise<string> {
  const { FdFile } = await import('../util/fd_file.js');
  const { BlockBuffers, readBlocks, RELEASED } = await import('../util/file_blocks.js');
  const f = FdFile.open(path, 'r');
  try {
    const h = blake3Impl.hasher();
    await readBlocks(f, 0, null, new BlockBuffers(), (b) => {
      h.update(b);
      return RELEASED;
    });
    return h.digest('hex');
  } finally {
    f.close();
  }
}
