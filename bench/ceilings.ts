/**
 * Ceilings of the direct data plane on this machine, measured in the same run as the copies:
 *   AES-256-GCM   node:crypto seal and open of 1 GiB in 4 MiB records, one core each
 *   loopback TCP  1 GiB from this process to a child over 127.0.0.1, no crypto, no files
 *   TCP + AEAD    the same through our record layer (RecordSealer here, RecordOpener there)
 * Nothing here touches a file or hashes: these are the upper bounds a copy cannot beat.
 */
import { spawn } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Direction } from '../src/protocol/aead.js';
import { RecordSealer } from '../src/transport/aead_stream.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const TOTAL = 1 << 30;
const BLOCK = 4 << 20;

const gbps = (bytes: number, s: number) => `${(bytes / 1e9 / s).toFixed(2)} GB/s`;

function aesGcm(): { seal: number; open: number } {
  const key = randomBytes(32);
  const block = randomBytes(BLOCK);
  const sealed: { ct: Buffer; tag: Buffer }[] = [];
  let t0 = performance.now();
  for (let i = 0; i < TOTAL / BLOCK; i++) {
    const c = createCipheriv('aes-256-gcm', key, Buffer.alloc(12, i & 0xff));
    const ct = c.update(block);
    c.final();
    if (i < 4) sealed.push({ ct, tag: c.getAuthTag() });
  }
  const seal = (performance.now() - t0) / 1000;
  t0 = performance.now();
  for (let i = 0; i < TOTAL / BLOCK; i++) {
    const s = sealed[i % 4];
    const d = createDecipheriv('aes-256-gcm', key, Buffer.alloc(12, i % 4));
    d.setAuthTag(s.tag);
    d.update(s.ct);
    d.final();
  }
  return { seal, open: (performance.now() - t0) / 1000 };
}

/** Sends 1 GiB of Data frames to a receiver child; with `aead` through the record layer. */
async function loopback(aead: boolean): Promise<number> {
  const key = randomBytes(32);
  const child = spawn(
    process.execPath,
    [path.join(here, 'ceiling_peer.js'), aead ? key.toString('hex') : '-'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const lines = child.stdout.setEncoding('utf8')[Symbol.asyncIterator]();
  const port = Number((await lines.next()).value);
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const frame = randomBytes(BLOCK + 9);
  frame.writeUInt32LE(BLOCK + 5, 0);
  frame[4] = 0x84;
  frame.writeUInt32LE(BLOCK, 5);
  const out = aead ? new RecordSealer(key, Direction.clientToServer, 0) : sock;
  if (aead) out.pipe(sock);
  const t0 = performance.now();
  for (let sent = 0; sent < TOTAL; sent += BLOCK) {
    if (!out.write(frame)) await new Promise((r) => out.once('drain', r));
  }
  out.end();
  await (await lines.next()).value;
  const s = (performance.now() - t0) / 1000;
  child.kill();
  return s;
}

export async function ceilings(): Promise<Record<string, string>> {
  const a = aesGcm();
  const tcp = await loopback(false);
  const both = await loopback(true);
  return {
    'ceiling: AES-256-GCM seal, one core (node:crypto, 4 MiB records)': gbps(TOTAL, a.seal),
    'ceiling: AES-256-GCM open, one core': gbps(TOTAL, a.open),
    'ceiling: loopback TCP, 1 GiB process to process (Node sockets)': gbps(TOTAL, tcp),
    'ceiling: loopback TCP through the AEAD record layer (seal here, open there)': gbps(TOTAL, both),
  };
}
