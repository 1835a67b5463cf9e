/**
 * Client side of the direct-TCP data plane (PROTOCOL.md section 12, rule 17.6): over an ssh
 * serve session that negotiated DIRECT_TCP, ask for a rendezvous, connect to the address it
 * names, answer the challenge with the keyed MAC, and run a second serve session whose frames
 * are AES-256-GCM records. ssh only carried the key; the bulk bytes never pass through it.
 *
 * The returned ServeClient owns the ssh session too: closing it ends the direct session first,
 * then the ssh one (the server process lives until both are gone).
 */
import net from 'node:net';
import { directMac } from '../../codec/hash.js';
import { DirectUnavailableError, DowngradeError, ProtocolError } from '../../errors.js';
import { encodeFrame } from '../../protocol/codec.js';
import { Cap } from '../../protocol/constants.js';
import type { ByteChannel } from '../../transport/channel.js';
import { readAuthFrame, recordStreams } from '../../transport/direct_auth.js';
import { ServeClient } from './serve_client.js';

/** A firewalled port drops SYNs silently: give up on it after this long. */
const CONNECT_TIMEOUT_MS = 5000;
/** How long a connection the listener turns away is tried again (its idle holders last 2 s). */
const TURNED_AWAY_MS = 3000;

/** Splits "ip:port" or "[v6]:port". */
export function parseDirectAddr(addr: string): { host: string; port: number } {
  const colon = addr.lastIndexOf(':');
  const host = addr.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(addr.slice(colon + 1));
  if (colon <= 0 || !host || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new ProtocolError(`DirectChannelReady names no usable address: ${JSON.stringify(addr)}`);
  }
  return { host, port };
}

/**
 * Opens the direct session beside `control` (an ssh session with DIRECT_TCP effective).
 * Throws DirectUnavailableError when the plane cannot be reached (the caller may fall back to
 * `control`), DowngradeError when the peer would run it without AEAD.
 */
export async function openDirect(
  control: ServeClient,
  caps: number,
  timeoutMs = CONNECT_TIMEOUT_MS,
): Promise<ServeClient> {
  if ((control.caps & Cap.DIRECT_TCP) === 0) {
    throw new DirectUnavailableError('the remote bcmr offers no direct data plane');
  }
  let ready: { addr: string; sessionKey: Uint8Array };
  try {
    ready = await control.openDirectChannel();
  } catch (err) {
    throw new DirectUnavailableError(`the server could not open a direct channel: ${(err as Error).message}`);
  }
  const { host, port } = parseDirectAddr(ready.addr);
  // A listener whose places for unauthenticated connections are taken (a flood of idle
  // connects: server/direct.ts) closes ours at once; those places free within 2 s, while the
  // listener waits 30 s. So a connection turned away is tried again for a while.
  const turnedAwayUntil = Date.now() + TURNED_AWAY_MS;
  let sock: net.Socket;
  let nonce: Uint8Array;
  for (let attempt = 1; ; attempt++) {
    sock = await connectWithin(host, port, timeoutMs).catch((err: Error) => {
      throw new DirectUnavailableError(`cannot reach ${ready.addr}: ${err.message}`);
    });
    const challenge = await readAuthFrame(sock, timeoutMs);
    if (typeof challenge === 'object' && challenge.type === 'AuthChallenge') {
      nonce = challenge.nonce;
      break;
    }
    sock.destroy();
    if (challenge === 'closed' && Date.now() < turnedAwayUntil) {
      await new Promise((r) => setTimeout(r, Math.min(400, 50 * 2 ** attempt)));
      continue;
    }
    const why = {
      timeout: `no AuthChallenge within ${timeoutMs / 1000} s`,
      closed: `the direct listener closed the connection ${attempt} time(s) (its places taken by other connections, or already used)`,
      malformed: 'it did not send an AuthChallenge',
    } as const;
    throw new DirectUnavailableError(
      `${ready.addr}: ${typeof challenge === 'string' ? why[challenge] : why.malformed}`,
    );
  }
  sock.write(encodeFrame({ type: 'AuthHello', mac: await directMac(ready.sessionKey, nonce) }));
  const link = { ownsControl: false };
  const client = await ServeClient.connect(directChannel(sock, ready.sessionKey, control, link), {
    caps: (caps & ~Cap.DIRECT_TCP) | Cap.AEAD,
    idleMs: control.idleMs,
    bwlimit: control.bwlimit,
  }).catch((err: Error) => {
    throw new DirectUnavailableError(`direct session to ${ready.addr} failed: ${err.message}`);
  });
  if ((client.caps & Cap.AEAD) === 0) {
    await client.destroy();
    throw new DowngradeError(
      `${ready.addr} tried to run the direct data plane without AES-256-GCM (caps 0x${client.caps.toString(16)}); refused`,
    );
  }
  link.ownsControl = true;
  return client;
}

/** `link.ownsControl`: once the direct session stands, closing it also closes the ssh one. */
function directChannel(
  sock: net.Socket,
  key: Uint8Array,
  control: ServeClient,
  link: { ownsControl: boolean },
): ByteChannel {
  sock.setNoDelay(true);
  sock.setKeepAlive(true, 15_000);
  const { input, output } = recordStreams(sock, key, 'client');
  const gone = new Promise<void>((resolve) => {
    if (sock.destroyed) resolve();
    else sock.once('close', () => resolve());
  });
  let closing: Promise<void> | null = null;
  return {
    readable: input,
    writable: output,
    close() {
      closing ??= (async () => {
        output.end();
        const timer = setTimeout(() => sock.destroy(), 5000);
        await gone;
        clearTimeout(timer);
        if (link.ownsControl) await control.close();
      })();
      return closing;
    },
    async abort() {
      sock.destroy();
      input.destroy();
      if (link.ownsControl) await control.destroy('Interrupted');
      await gone;
    },
    diagnostics: () => '',
  };
}

function connectWithin(host: string, port: number, ms: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer within ${ms / 1000} s`));
    }, ms);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.off('error', onError);
      sock.on('error', () => {});
      resolve(sock);
    });
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    sock.once('error', onError);
  });
}
