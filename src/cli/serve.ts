/** `bcmr serve`: a protocol session on stdin/stdout, or on loopback TCP with `--listen`. */
import { fstatSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import type { Writable } from 'node:stream';
import { UsageError } from '../errors.js';
import { removeTempsOnSignals } from '../server/live_temps.js';
import { serveSession } from '../server/session.js';
import { pooledInput, SlabPool } from '../transport/slab_pool.js';

export interface ServeCliOptions {
  root?: string;
  listen?: string;
}

export async function runServe(opts: ServeCliOptions): Promise<void> {
  const root = opts.root ?? os.homedir();
  removeTempsOnSignals();
  if (opts.listen) return listen(opts.listen, root);
  const pool = new SlabPool();
  await serveSession(stdioIn(pool), stdioOut(), { root, memory: pool });
}

/** Pipes and sockets get an async net.Socket (process.stdout would block on a full pipe). */
function stdioOut(): Writable {
  const st = fstatSync(1);
  if (st.isFIFO() || st.isSocket()) return new net.Socket({ fd: 1, readable: false, writable: true });
  return process.stdout;
}

/** Pipes and sockets are read into reused memory (slab_pool.ts): most of an upload's bytes. */
function stdioIn(pool: SlabPool): AsyncIterable<Uint8Array> {
  const st = fstatSync(0);
  if (st.isFIFO() || st.isSocket()) return pooledInput(0, pool);
  return process.stdin;
}

async function listen(addr: string, root: string): Promise<void> {
  const colon = addr.lastIndexOf(':');
  const host = addr.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(addr.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(port)) throw new UsageError(`--listen wants HOST:PORT, got ${addr}`);
  if (!['127.0.0.1', '::1', 'localhost'].includes(host)) {
    throw new UsageError('--listen serves plain frames and only binds a loopback address');
  }
  const server = net.createServer((sock) => {
    serveSession(sock, sock, { root }).catch((err: Error) => {
      process.stderr.write(`bcmr serve: ${err.message}\n`);
      sock.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as net.AddressInfo;
  process.stderr.write(`bcmr serve: listening on ${a.address}:${a.port}\n`);
  await new Promise<void>(() => {});
}
