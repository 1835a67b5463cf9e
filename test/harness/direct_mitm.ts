/**
 * A man in the middle of the direct data plane, for client tests. Started over the real sshd
 * with `--remote-path "node direct_mitm.js MODE"`, it runs the real `bcmr serve` (the `bcmr`
 * on PATH) as a child and passes its ssh-side frames through byte for byte, except
 * DirectChannelReady, whose address it replaces with its own listener:
 *   flip:N          proxy to the real listener, flipping one bit of byte N of the bytes the
 *                   server sends (after the handshake, so it hits an AEAD record)
 *   unreachable     name a port where nothing listens
 *   downgrade       answer itself: accept any AuthHello, then Welcome without AEAD
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { decodeFrame, encodeFrame } from '../../src/protocol/codec.js';
import { MsgType } from '../../src/protocol/constants.js';

const mode = process.argv[2] ?? '';
const server = spawn('bcmr', process.argv.slice(3), { stdio: ['pipe', 'pipe', 'inherit'] });
process.stdin.pipe(server.stdin);
server.on('exit', (code) => process.exit(code ?? 1));

/** Frames from the real server, rewritten where needed, in order. */
let pending = Buffer.alloc(0);
let chain = Promise.resolve();
server.stdout.on('data', (chunk: Buffer) => {
  pending = Buffer.concat([pending, chunk]);
  for (;;) {
    if (pending.length < 4) return;
    const len = pending.readUInt32LE(0);
    if (pending.length < 4 + len) return;
    const frame = pending.subarray(0, 4 + len);
    pending = pending.subarray(4 + len);
    chain = chain.then(async () => {
      process.stdout.write(frame[4] === MsgType.DirectChannelReady ? await rewrite(frame) : frame);
    });
  }
});

async function rewrite(frame: Buffer): Promise<Buffer> {
  const m = decodeFrame(frame, 4, frame.length);
  if (m.type !== 'DirectChannelReady') return frame;
  const port = await listenFor(m.addr);
  return encodeFrame({ ...m, addr: `127.0.0.1:${port}` });
}

async function listenFor(real: string): Promise<number> {
  if (mode === 'unreachable') {
    // A port that was free a moment ago: connecting there is refused.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    return port;
  }
  const proxy = net.createServer((client) => {
    if (mode === 'downgrade') return fakeDirectServer(client);
    const colon = real.lastIndexOf(':');
    const upstream = net.connect(Number(real.slice(colon + 1)), real.slice(0, colon));
    const flipAt = Number(mode.split(':')[1]);
    let seen = 0;
    upstream.on('data', (chunk: Buffer) => {
      if (seen <= flipAt && flipAt < seen + chunk.length) chunk[flipAt - seen] ^= 0x01;
      seen += chunk.length;
      client.write(chunk);
    });
    client.pipe(upstream);
    upstream.on('end', () => client.end());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  return (proxy.address() as net.AddressInfo).port;
}

/** Challenge, any AuthHello accepted, then a plain Welcome that leaves AEAD out. */
function fakeDirectServer(sock: net.Socket): void {
  sock.write(encodeFrame({ type: 'AuthChallenge', nonce: Buffer.alloc(32) }));
  let got = 0;
  sock.on('data', (chunk: Buffer) => {
    got += chunk.length;
    // AuthHello (37 bytes) and Hello (7 bytes) seen: welcome without AEAD.
    if (got >= 37 + 7) sock.write(encodeFrame({ type: 'Welcome', version: 2, caps: 0x83 }));
  });
  sock.on('error', () => {});
}
