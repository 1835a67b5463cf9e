/** Test helpers: a serve session in-process over pipes, or a spawned `bcmr serve`. */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { type ConnectOptions, ServeClient } from '../../src/client/serve/serve_client.js';
import { serveSession } from '../../src/server/session.js';
import { childChannel, streamChannel } from '../../src/transport/channel.js';
import './isolate.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** bin/bcmr.js of this checkout (tests run from dist/test/helpers). */
export const BCMR_BIN = path.resolve(here, '../../../bin/bcmr.js');

export async function tempDir(prefix = 'bcmr-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface Connected {
  client: ServeClient;
  /** Resolves when the server side ends (in-process) or the process exits. */
  serverDone: Promise<unknown>;
}

/**
 * An in-memory pipe that copies what is written, as a kernel pipe or socket does. A bare
 * PassThrough would hand the reader the writer's own buffers, which the sender reuses once
 * the write completes (the sink's by-reference contract assumes a real channel).
 */
function copyingPipe(): Transform {
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, done) {
      done(null, Buffer.from(chunk));
    },
  });
}

export async function connectInProcess(
  root: string,
  opts: ConnectOptions = {},
  casDir?: string,
): Promise<Connected> {
  const c2s = copyingPipe();
  const s2c = copyingPipe();
  const serverDone = serveSession(c2s, s2c, { root, casDir }).catch((e: Error) => e);
  const client = await ServeClient.connect(streamChannel(s2c, c2s), opts);
  return { client, serverDone };
}

export async function connectSpawned(
  root: string,
  opts: ConnectOptions = {},
  env: NodeJS.ProcessEnv = {},
): Promise<Connected & { exitCode: Promise<number | null>; pid: number }> {
  const child = spawn(process.execPath, [BCMR_BIN, 'serve', '--root', root], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const exitCode = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const client = await ServeClient.connect(childChannel(child), opts);
  return { client, serverDone: exitCode, exitCode, pid: child.pid ?? -1 };
}

/** A Get collected into one buffer, with the server's Ok hash. */
export async function getBuffer(
  client: ServeClient,
  p: string,
  offset = 0,
): Promise<{ data: Buffer; hash: string | null }> {
  const parts: Buffer[] = [];
  const hash = await client.get(p, offset, (b) => {
    parts.push(Buffer.from(b));
  });
  return { data: Buffer.concat(parts), hash };
}

/** A Put of `data` in 4 MiB blocks; resolves with the server's Ok hash. */
export function putBuffer(
  client: ServeClient,
  p: string,
  data: Buffer,
  overwrite = true,
): Promise<string | null> {
  return client.put(p, { size: data.length, overwrite }, async (emit) => {
    for (let o = 0; o < data.length; o += 4 << 20)
      await emit(data.subarray(o, Math.min(o + (4 << 20), data.length)));
  });
}
