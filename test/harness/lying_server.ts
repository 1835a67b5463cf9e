/**
 * The real `bcmr serve` (the `bcmr` on PATH, run as a child) behind a frame-level liar, for
 * client tests. Started over the real sshd with `--remote-path "node lying_server.js MODE"`;
 * every frame passes byte for byte except what MODE changes:
 *   hash-lies            every HashResponse names a hash of other bytes (what a server that
 *                        lies about what it stored would say to -V)
 *   get-flips            flips the last byte of every uncompressed Data frame the server
 *                        sends (a source that serves other bytes of the same size; its
 *                        Hash replies stay honest)
 *   stat-fails:SUFFIX    a Stat of a path ending in SUFFIX is answered with an `io:` Error
 *                        instead of its StatResponse (a Stat that failed for another reason
 *                        than the file being missing)
 */
import { spawn } from 'node:child_process';
import { blake3Hex } from '../../src/codec/hash.js';
import { decodeFrame, encodeFrame } from '../../src/protocol/codec.js';
import { MsgType } from '../../src/protocol/constants.js';

const [mode, arg] = (process.argv[2] ?? '').split(':');
const server = spawn('bcmr', process.argv.slice(3), { stdio: ['pipe', 'pipe', 'inherit'] });
server.on('exit', (code) => process.exit(code ?? 1));
process.stdin.on('end', () => server.stdin.end());

/** Calls `each` with every whole frame of a byte stream (4-byte little-endian length first). */
function frames(each: (frame: Buffer) => void): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      if (pending.length < 4) return;
      const len = pending.readUInt32LE(0);
      if (pending.length < 4 + len) return;
      each(pending.subarray(0, 4 + len));
      pending = pending.subarray(4 + len);
    }
  };
}

/** Requests sent to the server, oldest first; true for a Stat to answer with an Error. */
const asked: boolean[] = [];
/** Frames a request's data travels in: not requests of their own. */
const DATA = new Set<number>([MsgType.Data, MsgType.DataCompressed]);
/** Reply frames after which the request is not yet answered. */
const NOT_LAST = new Set<number>([MsgType.Data, MsgType.DataCompressed, MsgType.MissingBlocks]);

process.stdin.on(
  'data',
  frames((frame) => {
    const type = frame[4];
    if (!DATA.has(type) && type !== MsgType.Hello && type !== MsgType.HaveBlocks) {
      let fail = false;
      if (mode === 'stat-fails' && type === MsgType.Stat) {
        const m = decodeFrame(frame, 4, frame.length);
        fail = m.type === 'Stat' && m.path.endsWith(arg);
      }
      asked.push(fail);
    }
    server.stdin.write(frame);
  }),
);

let welcomed = false;
server.stdout.on(
  'data',
  frames((frame) => {
    const type = frame[4];
    if (!welcomed) {
      welcomed = type === MsgType.Welcome;
      process.stdout.write(frame);
      return;
    }
    if (NOT_LAST.has(type)) {
      if (mode === 'get-flips' && type === MsgType.Data && frame.length > 9) frame[frame.length - 1] ^= 0x01;
      process.stdout.write(frame);
      return;
    }
    const fail = asked.shift() === true;
    if (fail && type === MsgType.StatResponse) {
      process.stdout.write(
        encodeFrame({ type: 'Error', message: 'io: injected: stat failed (not missing)' }),
      );
      return;
    }
    if (mode === 'hash-lies' && type === MsgType.HashResponse) {
      process.stdout.write(
        encodeFrame({ type: 'HashResponse', hash: blake3Hex(Buffer.from('other bytes')) }),
      );
      return;
    }
    process.stdout.write(frame);
  }),
);
