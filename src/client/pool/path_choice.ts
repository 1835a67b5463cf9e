/**
 * `-P auto` and `--direct auto`: how many connections and which data plane, from what the path
 * showed while connecting (its round-trip time; whether the server offers the direct plane)
 * and from the work (bytes, files, the largest file). Pure: the pool measures, this decides,
 * and the unit tests feed it given inputs.
 *
 * The model: one stream carries at most its window per round trip. OpenSSH's channel window
 * is 2 MiB, so an ssh stream tops out at 2 MiB / RTT (42 MB/s at 50 ms) whatever the link; a
 * direct TCP connection is bounded by the kernel's default socket buffer limits instead
 * (measured through the bench's emulated path: 52 MB/s at 50 ms, ~2.5 MiB per round trip).
 * Neither bound matters where one connection already moves what this machine can push through
 * one bcmr stream (STREAM_CEILING, loopback and LANs): there more connections only share the
 * same cores, so auto keeps one. Otherwise it opens as many as it takes to reach that rate,
 * never more than the work can use: striping needs a file of STRIPE_MIN_BYTES, files need one
 * each, and every extra connection (an ssh handshake and a remote server start) must have a
 * second or more of work at its own ceiling.
 */
import type { PathChoice, WorkFacts } from '../../core/remote_fs.js';
import { STRIPE_MIN_BYTES } from '../serve/policy.js';

export type { PathChoice, WorkFacts };

const MiB = 1 << 20;
/** OpenSSH's per-channel window (CHAN_SES_WINDOW_DEFAULT). */
const SSH_WINDOW = 2 * MiB;
/** What one direct TCP connection keeps in flight with Linux's default buffer limits (measured). */
const DIRECT_WINDOW = 2.5 * MiB;
/** What one bcmr connection moves on a path without a window bound (loopback, this class of host). */
const STREAM_CEILING = 250e6;
/**
 * Most connections auto opens: each is an ssh session, a remote server process and a TCP
 * stream's kernel work, and past about two per core they only share the CPU (measured on the
 * bench's 50 ms path with 2 cores: -P 2 and 4 moved 1 GiB in 14-16 s, -P 5 and 8 in 17.6-17.8 s
 * with a third more CPU).
 */
export function maxAutoConnections(cores: number): number {
  return Math.max(2, Math.min(8, 2 * Math.floor(cores)));
}
/** An extra connection must have at least this long of work at its own ceiling to pay. */
const MIN_SECONDS_PER_CONNECTION = 1;

export interface PathFacts {
  /** Smallest round trip seen on the first connection, in ms. */
  rttMs: number;
  /** The server negotiated DIRECT_TCP (the port itself is tried when the plane is chosen). */
  directOffered: boolean;
  /** This machine's cores (os.availableParallelism()): bounds how many connections pay. */
  cores: number;
}

export interface PathAsk {
  /** -P: a number, or 'auto'. */
  connections: number | 'auto';
  /** --direct: 'ssh', 'direct', or 'auto'. */
  plane: 'ssh' | 'direct' | 'auto';
}

/** Bytes per second one stream of `plane` can carry at `rttMs`. */
function streamRate(plane: 'ssh' | 'direct', rttMs: number): number {
  const window = plane === 'ssh' ? SSH_WINDOW : DIRECT_WINDOW;
  return Math.min(STREAM_CEILING, window / (Math.max(rttMs, 0.01) / 1000));
}

const mbps = (bytesPerSecond: number) => `${Math.round(bytesPerSecond / 1e6)} MB/s`;

export function choosePath(path: PathFacts, work: WorkFacts, ask: PathAsk): PathChoice {
  const rtt = `rtt ${path.rttMs < 10 ? path.rttMs.toFixed(2) : path.rttMs.toFixed(0)} ms`;
  const sshRate = streamRate('ssh', path.rttMs);
  const windowBound = sshRate < STREAM_CEILING;
  // The direct plane pays where there is more than a second of work: past ssh's window on a
  // long path; on a short one only for big files, through its cost per byte (one AES-GCM layer
  // in the two bcmr processes instead of ssh's cipher in ssh and sshd and the pipes between:
  // on loopback 1 GiB up in 4.1 s and 6.5 CPU s against 6.1 s and 9.2 over ssh), while many
  // small files cost more there (a record per small frame: 10,000 x 64 KiB up in 6.9 s and 11.4
  // CPU s against 5.9 s and 8.6).
  let plane: 'ssh' | 'direct';
  let planeWhy: string;
  if (ask.plane !== 'auto') {
    plane = ask.plane;
    planeWhy = `--direct=${ask.plane}`;
  } else if (!path.directOffered) {
    plane = 'ssh';
    planeWhy = 'the server offers no direct plane';
  } else if (work.bytes < sshRate * MIN_SECONDS_PER_CONNECTION) {
    plane = 'ssh';
    planeWhy = `too little work for a second connection (${work.bytes} B)`;
  } else if (!windowBound && work.largest < STRIPE_MIN_BYTES) {
    plane = 'ssh';
    planeWhy = 'small files cost less over the ssh channel where its window does not bind';
  } else {
    plane = 'direct';
    planeWhy = windowBound
      ? `ssh's 2 MiB window caps a stream at ${mbps(sshRate)}, direct TCP at ${mbps(streamRate('direct', path.rttMs))}`
      : 'direct TCP costs less CPU per byte than the ssh channel';
  }
  const chose = (connections: number, why: string): PathChoice => ({
    connections,
    plane,
    rttMs: path.rttMs,
    why: `${rtt}; ${why}; ${planeWhy}`,
  });
  if (ask.connections !== 'auto') return chose(ask.connections, `-P ${ask.connections}`);
  const rate = streamRate(plane, path.rttMs);
  if (rate >= STREAM_CEILING) return chose(1, '1 connection: one stream is not window-bound');
  const wanted = Math.ceil(STREAM_CEILING / rate);
  const most = maxAutoConnections(path.cores);
  // What the work can use: a file each, or ranges of one file large enough to stripe.
  const usable = work.largest >= STRIPE_MIN_BYTES ? most : work.files;
  const worth = Math.floor(work.bytes / (rate * MIN_SECONDS_PER_CONNECTION));
  const n = Math.max(1, Math.min(wanted, most, usable, worth));
  const limit =
    n === wanted
      ? `${wanted} reach ${mbps(STREAM_CEILING)}`
      : n === most
        ? `at most ${most} on ${path.cores} cores`
        : n === usable
          ? `the work can use ${usable}`
          : `${work.bytes} B are worth ${Math.max(1, worth)}`;
  return chose(n, `${n} connection${n > 1 ? 's' : ''} (one stream ≤ ${mbps(rate)}; ${limit})`);
}
