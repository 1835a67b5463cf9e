/**
 * A long fat pipe for the bench (issue 17): two network namespaces joined by a pair of TUN
 * devices, with `bench/wan/wanlink.c` forwarding every IP packet between them after a fixed
 * one-way delay, at a rate limit, through a bounded queue (drops when full). Unlike the delay
 * proxy (only connections to the ssh port), every TCP connection takes the path: ssh, and the
 * direct data plane on its own port. The forwarder is compiled here with the system's C
 * compiler; needs root, iproute2, /dev/net/tun and cc.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Tool } from './tools.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The C source lives beside the TypeScript sources (dist/ holds only the compiled .js). */
const SOURCE = path.resolve(here, '../../bench/wan/wanlink.c');
const PEER = path.join(here, 'wan', 'tcp_ceiling.js');
const CLIENT_ADDR = '10.79.0.2';
const CLIENT = 'bcmrw-cli';
const SERVER = 'bcmrw-srv';

export interface WanPath {
  /** Round-trip time in ms and rate in Mbit/s, as asked for. */
  rttMs: number;
  mbit: number;
  serverAddr: string;
  /** argv prefix that runs a command in the client namespace (every tool runs there). */
  inClient: string[];
  /** argv prefix for the server namespace (sshd, the TCP ceiling's receiver). */
  inServer: string[];
  /** Ends the forwarder and deletes both namespaces; returns its packet counters. */
  teardown(): Promise<string>;
}

export function wanUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root for network namespaces';
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun';
  for (const [cmd, arg] of [
    ['ip', '-V'],
    ['cc', '--version'],
  ]) {
    try {
      execFileSync(cmd, [arg], { stdio: 'ignore' });
    } catch {
      return `needs ${cmd}`;
    }
  }
  return null;
}

function deleteNamespaces(): void {
  for (const ns of [CLIENT, SERVER]) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // Not there.
    }
  }
}

/**
 * Builds the path: `rttMs` round trip (half each way), `mbit` each way, a router queue of
 * `queueMs` at that rate, and MTU 9000 (fewer packets for a userspace forwarder).
 */
export async function setupWan(scratch: string, rttMs: number, mbit: number, queueMs = 50): Promise<WanPath> {
  mkdirSync(scratch, { recursive: true });
  const bin = path.join(scratch, 'wanlink');
  execFileSync('cc', ['-O2', '-Wall', '-o', bin, SOURCE]);
  deleteNamespaces();
  execFileSync('ip', ['netns', 'add', CLIENT]);
  execFileSync('ip', ['netns', 'add', SERVER]);
  const child: ChildProcess = spawn(
    bin,
    [CLIENT, SERVER, String(rttMs / 2), String(mbit), String(queueMs), '9000'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  await new Promise<void>((resolve, reject) => {
    child.stdout
      ?.setEncoding('utf8')
      .once('data', (s: string) => (s.startsWith('ready') ? resolve() : reject(new Error(`wanlink: ${s}`))));
    child.once('exit', (code) => reject(new Error(`wanlink exited ${code}: ${err.trim()}`)));
  });
  return {
    rttMs,
    mbit,
    serverAddr: '10.79.0.1',
    inClient: ['ip', 'netns', 'exec', CLIENT],
    inServer: ['ip', 'netns', 'exec', SERVER],
    async teardown() {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
      deleteNamespaces();
      return err.trim();
    },
  };
}

/** Receivers of raw TCP in both namespaces (bench/wan/tcp_ceiling.ts), for `rawTcp`. */
export interface TcpReceivers {
  serverPort: number;
  clientPort: number;
  stop(): void;
}

export async function startTcpReceivers(wan: WanPath): Promise<TcpReceivers> {
  const one = async (prefix: string[], addr: string) => {
    const child = spawn(prefix[0], [...prefix.slice(1), process.execPath, PEER, 'recv', addr], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout?.setEncoding('utf8').once('data', (s: string) => resolve(Number(s.trim())));
      child.once('exit', (code) => reject(new Error(`TCP receiver exited ${code}`)));
    });
    return { child, port };
  };
  const s = await one(wan.inServer, wan.serverAddr);
  const c = await one(wan.inClient, CLIENT_ADDR);
  return {
    serverPort: s.port,
    clientPort: c.port,
    stop() {
      s.child.kill();
      c.child.kill();
    },
  };
}

/**
 * Raw TCP over `streams` connections, the dataset's size in all, with no ssh, no crypto and no
 * files: the ceiling a copy over that many connections cannot beat. Run in the client
 * namespace; a download sends from the server namespace.
 */
export function rawTcp(wan: WanPath, rx: TcpReceivers, streams: number): Tool {
  return {
    name: `raw TCP, ${streams} stream${streams > 1 ? 's' : ''}`,
    peer: false,
    copies: false,
    can: (j) => j.kind === 'file',
    argv: (j) => {
      const send = (to: string, port: number) => [
        process.execPath,
        PEER,
        'send',
        to,
        String(port),
        String(statSync(j.src).size),
        String(streams),
      ];
      return j.direction === 'up'
        ? send(wan.serverAddr, rx.serverPort)
        : [...wan.inServer, ...send(CLIENT_ADDR, rx.clientPort)];
    },
  };
}
