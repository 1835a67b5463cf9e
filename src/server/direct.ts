/**
 * Server side of the direct-TCP rendezvous (PROTOCOL.md section 12, rule 17.6).
 *
 * OpenDirectChannel on the ssh session binds a listener on the address the client reached us
 * at (SSH_CONNECTION's third field), with a fresh random 32-byte key, and replies with both
 * over ssh. Each connection gets a plain AuthChallenge and has 2 s to prove the key with a
 * keyed-BLAKE3 AuthHello; the first that does wins and the listener closes at once, so
 * exactly one connection is ever served per key. Nobody within 30 s: the listener closes too.
 * The winner runs an ordinary serve session whose frames are AES-256-GCM records.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { directMac } from '../codec/hash.js';
import { encodeFrame } from '../protocol/codec.js';
import type { RecordOpener, RecordSealer } from '../transport/aead_stream.js';
import { readAuthFrame, recordStreams } from '../transport/direct_auth.js';
import { OpError } from './context.js';

/** At most this many rendezvous wait for their connection per ssh session. */
const MAX_PENDING_RENDEZVOUS = 16;
const AUTH_TIMEOUT_MS = 2000;
/**
 * Connections that have not authenticated yet, at most, per listener and per process: each
 * holds a descriptor for up to AUTH_TIMEOUT_MS, so a flood of idle connects must not exhaust
 * ours. Past the cap a connection is closed at once. So that a flood cannot take every place
 * of a listener, one source address holds at most MAX_UNAUTHENTICATED_PER_SOURCE of them, and
 * the ssh client's own address (SSH_CONNECTION's first field) has places of its own beside the
 * shared ones: a flood from elsewhere never keeps the real client out. A flood from the
 * client's own address (another user of that host) can; the client then tries again while
 * the listener waits, and else reports the plane unavailable (--json: `directUnavailable`).
 */
const MAX_UNAUTHENTICATED_PER_LISTENER = 4;
const MAX_UNAUTHENTICATED_PER_SOURCE = 2;
const MAX_UNAUTHENTICATED = 64;
/** How long a waiting listener outlives the ssh session that opened it (see closeAll). */
const CLOSE_GRACE_MS = 2000;
let unauthenticated = 0;

export type DirectSessionRunner = (input: RecordOpener, output: RecordSealer) => Promise<void>;

function rendezvousTimeoutMs(): number {
  const s = Number(process.env.BCMR_RENDEZVOUS_TIMEOUT_SECS);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 30_000;
}

/** The address the ssh client connected from: its direct connection comes from there too. */
function sshClientAddress(env = process.env): string | null {
  const parts = (env.SSH_CONNECTION ?? '').trim().split(/\s+/);
  return parts.length >= 4 && parts[0] ? parts[0] : null;
}

/** An address as the socket reports it, without the IPv4-mapped IPv6 prefix. */
function plainAddress(a: string | undefined): string {
  return (a ?? '').replace(/^::ffff:/, '');
}

/** The address the ssh client connected to: only there is the listener bound. */
function sshVisibleAddress(env = process.env): string {
  const parts = (env.SSH_CONNECTION ?? '').trim().split(/\s+/);
  return parts.length >= 4 && parts[2] ? parts[2] : '127.0.0.1';
}

function formatAddr(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export class Rendezvous {
  private pending = 0;
  /** Waiting listeners, each with the function that closes it. */
  private readonly listeners = new Map<net.Server, () => void>();
  /** Connections proving the key, and direct sessions running: the ssh session waits for them. */
  private readonly inProgress = new Set<Promise<unknown>>();

  constructor(
    private readonly runSession: DirectSessionRunner,
    private readonly log: (line: string) => void,
  ) {}

  /** Opens a listener; resolves with what DirectChannelReady carries. */
  async open(): Promise<{ addr: string; sessionKey: Uint8Array }> {
    if (this.pending >= MAX_PENDING_RENDEZVOUS) {
      throw new OpError(`busy: ${MAX_PENDING_RENDEZVOUS} direct channels are already waiting`);
    }
    const host = sshVisibleAddress();
    const key = randomBytes(32);
    const server = net.createServer({ noDelay: true });
    let won = false;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: Error) => {
      throw new OpError(`io: cannot listen on ${host}: ${err.message}`);
    });
    this.pending++;
    const close = (): void => {
      if (!this.listeners.delete(server)) return;
      this.pending--;
      clearTimeout(timer);
      server.close();
    };
    this.listeners.set(server, close);
    const timer = setTimeout(close, rendezvousTimeoutMs());
    server.on('error', close);
    const client = sshClientAddress();
    // Places taken by connections still proving the key: shared, the client's own, per source.
    let shared = 0;
    let own = 0;
    const bySource = new Map<string, number>();
    server.on('connection', (sock) => {
      const from = plainAddress(sock.remoteAddress);
      const fromSource = bySource.get(from) ?? 0;
      const mine = client !== null && from === plainAddress(client) && own < MAX_UNAUTHENTICATED_PER_SOURCE;
      if (
        won ||
        fromSource >= MAX_UNAUTHENTICATED_PER_SOURCE + (mine ? MAX_UNAUTHENTICATED_PER_SOURCE : 0) ||
        (!mine && shared >= MAX_UNAUTHENTICATED_PER_LISTENER) ||
        unauthenticated >= MAX_UNAUTHENTICATED
      ) {
        sock.destroy();
        return;
      }
      if (mine) own++;
      else shared++;
      bySource.set(from, fromSource + 1);
      unauthenticated++;
      sock.on('error', () => {});
      this.track(
        authenticate(sock, key).then((ok) => {
          if (mine) own--;
          else shared--;
          bySource.set(from, (bySource.get(from) ?? 1) - 1);
          unauthenticated--;
          if (!ok || won) {
            sock.destroy();
            return;
          }
          won = true;
          close();
          this.track(this.serve(sock, key));
        }),
      );
    });
    const a = server.address() as net.AddressInfo;
    return { addr: formatAddr(host, a.port), sessionKey: key };
  }

  /**
   * The ssh session ended (its stdin closed): listeners still waiting close after a short grace,
   * not at once. A client may close that stdin right after its direct socket connected (the
   * Rust client does), before we accepted it; closing the listener then would reset that
   * connection in the kernel's backlog. Running sessions go on.
   */
  closeAll(graceMs = CLOSE_GRACE_MS): void {
    for (const close of this.listeners.values()) setTimeout(close, graceMs).unref();
  }

  /**
   * Resolves when no connection is proving its key and no direct session runs. The ssh session
   * that opened them keeps its stdout open until then: a client may close the ssh session's
   * stdin as soon as its direct socket is connected (the Rust client does), and an ended stdout
   * would tell it the server is gone.
   */
  async settled(): Promise<void> {
    for (;;) {
      if (this.inProgress.size > 0) await Promise.allSettled([...this.inProgress]);
      else if (this.listeners.size > 0) await new Promise((r) => setTimeout(r, 50));
      else return;
    }
  }

  private track(p: Promise<unknown>): void {
    const t = p.catch(() => {}).finally(() => this.inProgress.delete(t));
    this.inProgress.add(t);
  }

  private async serve(sock: net.Socket, key: Uint8Array): Promise<void> {
    sock.setKeepAlive(true, 15_000);
    const { input, output } = recordStreams(sock, key, 'server');
    await this.runSession(input, output).catch((err: Error) => {
      this.log(`bcmr serve: direct session: ${err.message}`);
      sock.destroy();
    });
  }
}

/**
 * Sends AuthChallenge and reads one AuthHello within 2 s. Bytes the client sent after it
 * (a pipelined Hello) are put back for the session.
 */
async function authenticate(sock: net.Socket, key: Uint8Array): Promise<boolean> {
  const nonce = randomBytes(32);
  sock.write(encodeFrame({ type: 'AuthChallenge', nonce }));
  const hello = await readAuthFrame(sock, AUTH_TIMEOUT_MS);
  return (
    typeof hello === 'object' &&
    hello.type === 'AuthHello' &&
    timingSafeEqual(hello.mac, await directMac(key, nonce))
  );
}
