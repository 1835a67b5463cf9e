/**
 * The direct-TCP rendezvous of a spawned `bcmr serve` (PROTOCOL.md section 12, rule 17.6),
 * driven with raw sockets: a wrong MAC is refused, exactly one authenticated connection is
 * served and the listener is gone after it, an unused listener closes after its timeout, a
 * Hello without AEAD is refused on the direct socket, and openDirect's session round-trips.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDirect, parseDirectAddr } from '../../src/client/serve/direct.js';
import { DEFAULT_CLIENT_CAPS, type ServeClient } from '../../src/client/serve/serve_client.js';
import { blake3Hex, directMac } from '../../src/codec/hash.js';
import { Cap, MsgType } from '../../src/protocol/constants.js';
import { connectSpawned, tempDir } from '../helpers/serve.js';

const CAPS = DEFAULT_CLIENT_CAPS | Cap.DIRECT_TCP;

/**
 * Connects and collects everything the server sends until it closes, or `ms` passes (then we
 * close, and `closedByServer` is false).
 */
function talk(
  addr: string,
  send: (challenge: Buffer) => Buffer | null | Promise<Buffer | null>,
  ms = 3000,
): Promise<Buffer & { closedByServer?: boolean }> {
  const { host, port } = parseDirectAddr(addr);
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, host);
    const got: Buffer[] = [];
    let answered = false;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      sock.destroy();
    }, ms);
    sock.on('data', (b: Buffer) => {
      got.push(b);
      const all = Buffer.concat(got);
      if (!answered && all.length >= 37) {
        answered = true;
        void Promise.resolve(send(all.subarray(0, 37))).then((reply) => {
          if (reply) sock.write(reply);
        });
      }
    });
    sock.on('error', reject);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Object.assign(Buffer.concat(got), { closedByServer: !timedOut }));
    });
  });
}

/** Polls until a connect to host:port is refused (true), or `ms` passes (false). */
async function refusedWithin(host: string, port: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, host);
      s.on('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
    });
    if (refused) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

async function authHello(key: Uint8Array, challenge: Buffer, wrong = false): Promise<Buffer> {
  const mac = await directMac(key, challenge.subarray(5));
  if (wrong) mac[0] ^= 1;
  return Buffer.concat([Buffer.from([33, 0, 0, 0, MsgType.AuthHello]), mac]);
}

describe('direct rendezvous of bcmr serve', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let control: ServeClient;
  let serverPid: number;
  before(async () => {
    ({ dir: root, cleanup } = await tempDir());
    ({ client: control, pid: serverPid } = await connectSpawned(
      root,
      { caps: CAPS },
      { SSH_CONNECTION: '', BCMR_RENDEZVOUS_TIMEOUT_SECS: '1' },
    ));
  });
  after(async () => {
    await control.close();
    await cleanup();
  });

  it('offers DIRECT_TCP and not AEAD on the ssh session', () => {
    assert.equal(control.caps & (Cap.DIRECT_TCP | Cap.AEAD), Cap.DIRECT_TCP);
  });

  it('sends a plain AuthChallenge and closes on a wrong MAC, sending nothing more', async () => {
    const { addr, sessionKey } = await control.openDirectChannel();
    assert.match(addr, /^127\.0\.0\.1:\d+$/);
    // Closed by the server for the wrong MAC: right after it, not when its 2 s wait for an
    // AuthHello would have ended (measured from the AuthHello, so a slow connect does not count).
    let sentAt = 0;
    const got = await talk(
      addr,
      async (ch) => {
        const hello = await authHello(sessionKey, ch, true);
        sentAt = Date.now();
        return hello;
      },
      10_000,
    );
    assert.equal(got.closedByServer, true, 'the server must close the connection itself');
    assert.ok(Date.now() - sentAt < 1900, `closed ${Date.now() - sentAt} ms after the wrong AuthHello`);
    assert.equal(got.length, 37);
    assert.deepEqual([...got.subarray(0, 5)], [33, 0, 0, 0, MsgType.AuthChallenge]);
  });

  it('serves the first authenticated connection only; the listener is gone after it', async () => {
    const { addr, sessionKey } = await control.openDirectChannel();
    const { host, port } = parseDirectAddr(addr);
    // Authenticate, then say Hello with AEAD: a plain Welcome offering AEAD comes back.
    const first = talk(addr, async (ch) =>
      Buffer.concat([
        await authHello(sessionKey, ch),
        Buffer.from([3, 0, 0, 0, MsgType.Hello, 2, Cap.AEAD | Cap.ZSTD]),
      ]),
    );
    // The listener closes once the first connection authenticated (polled, with a deadline).
    assert.equal(await refusedWithin(host, port, 5000), true, 'the listener must close after the winner');
    const got = await first;
    assert.deepEqual([...got.subarray(37, 44)], [3, 0, 0, 0, MsgType.Welcome, 2, Cap.AEAD | Cap.ZSTD]);
  });

  it('refuses a Hello without AEAD on the direct socket', async () => {
    const { addr, sessionKey } = await control.openDirectChannel();
    const got = await talk(addr, async (ch) =>
      Buffer.concat([await authHello(sessionKey, ch), Buffer.from([3, 0, 0, 0, MsgType.Hello, 2, Cap.ZSTD])]),
    );
    const reply = got.subarray(37);
    assert.equal(reply[4], MsgType.Error);
    assert.match(reply.subarray(9).toString(), /requires CAP_AEAD/);
  });

  it('closes a listener nobody authenticated within its timeout', async () => {
    const { addr } = await control.openDirectChannel();
    const { host, port } = parseDirectAddr(addr);
    // BCMR_RENDEZVOUS_TIMEOUT_SECS=1: refused soon after that second (polled; no connection is
    // made meanwhile that would count as an attempt, only connect probes that are closed at once).
    assert.equal(await refusedWithin(host, port, 5000), true, 'the unused listener must close');
  });

  it('draws a fresh key for every rendezvous', async () => {
    const a = await control.openDirectChannel();
    const b = await control.openDirectChannel();
    assert.notDeepEqual(Buffer.from(a.sessionKey), Buffer.from(b.sessionKey));
    assert.notEqual(a.addr, b.addr);
  });

  it('runs a whole AEAD session through openDirect: Put, Stat, Get', async () => {
    const direct = await openDirect(control, CAPS);
    assert.ok(direct.caps & Cap.AEAD);
    const data = randomBytes(5 << 20);
    const hash = await direct.put('d.bin', { size: data.length }, async (emit) => {
      await (await emit(data.subarray(0, 4 << 20))).released;
      await (await emit(data.subarray(4 << 20))).released;
    });
    assert.equal(hash, blake3Hex(data));
    assert.equal((await direct.stat('d.bin')).size, data.length);
    const back: Buffer[] = [];
    await direct.get('d.bin', 0, (b) => back.push(Buffer.from(b)));
    assert.ok(Buffer.concat(back).equals(data));
    assert.ok(fs.readFileSync(path.join(root, 'd.bin')).equals(data));
    // Closing the direct client also ends the ssh-side session it owns.
    await direct.close();
    ({ client: control, pid: serverPid } = await connectSpawned(
      root,
      { caps: CAPS },
      { SSH_CONNECTION: '', BCMR_RENDEZVOUS_TIMEOUT_SECS: '1' },
    ));
  });

  it('a flood of idle connects is capped (a few descriptors), and the next rendezvous is served', async () => {
    const fds = () => fs.readdirSync(`/proc/${serverPid}/fd`).length;
    const before = fds();
    const { addr } = await control.openDirectChannel();
    const { host, port } = parseDirectAddr(addr);
    const socks: net.Socket[] = [];
    let closedByServer = 0;
    for (let i = 0; i < 300; i++) {
      const s = net.connect(port, host);
      s.on('error', () => {});
      s.on('close', () => closedByServer++);
      socks.push(s);
    }
    // Poll until the server has turned away all it will (everything past the cap).
    const deadline = Date.now() + 10_000;
    while (closedByServer < 300 - 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const held = fds() - before;
    for (const s of socks) s.destroy();
    assert.ok(held <= 8, `the server holds ${held} more descriptors`);
    assert.ok(closedByServer >= 296, `only ${closedByServer} of 300 were turned away`);
    const direct = await openDirect(control, CAPS);
    try {
      assert.equal((await direct.stat('')).isDir, true);
    } finally {
      await direct.close();
    }
  });

  it('refuses OpenDirectChannel on a session that did not negotiate DIRECT_TCP', async () => {
    const { client } = await connectSpawned(root, { caps: DEFAULT_CLIENT_CAPS });
    await assert.rejects(client.openDirectChannel(), { name: 'RemoteError' });
    await client.close();
  });
});

/**
 * A flood that keeps every place of a listener taken: each of its connections, turned away or
 * timed out, is opened again at once, from `from`. Returns a function that stops it.
 */
function persistentFlood(addr: string, from: string, width = 40): () => void {
  const { host, port } = parseDirectAddr(addr);
  let on = true;
  const socks = new Set<net.Socket>();
  const open = () => {
    if (!on) return;
    const s = net.connect({ port, host, localAddress: from });
    socks.add(s);
    s.on('error', () => {});
    s.on('close', () => {
      socks.delete(s);
      setImmediate(open);
    });
  };
  for (let i = 0; i < width; i++) open();
  return () => {
    on = false;
    for (const s of socks) s.destroy();
  };
}

/**
 * `control` with its next rendezvous flooded by `flood(addr)` for 200 ms before openDirect
 * gets the address (as an attacker watching for new listening ports would). Returns the stop.
 */
function floodNextRendezvous(control: ServeClient, flood: (addr: string) => () => void): () => void {
  let stop = () => {};
  const real = control.openDirectChannel.bind(control);
  control.openDirectChannel = async () => {
    const ready = await real();
    stop = flood(ready.addr);
    await new Promise((r) => setTimeout(r, 200)); // the flood takes its places
    return ready;
  };
  return () => stop();
}

/** `width` connections from `from` that never send a byte and are not opened again. */
function idleConnects(addr: string, from: string, width = 50): () => void {
  const { host, port } = parseDirectAddr(addr);
  const socks = Array.from({ length: width }, () => {
    const s = net.connect({ port, host, localAddress: from });
    s.on('error', () => {});
    return s;
  });
  return () => {
    for (const s of socks) s.destroy();
  };
}

describe('the places of a direct listener, under a flood', () => {
  // The ssh client is 127.0.0.1 (SSH_CONNECTION's first field); 127.0.0.2-4 are other hosts.
  // Each test has its own server: the direct client owns (and closes) its ssh session.
  let root: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ dir: root, cleanup } = await tempDir());
  });
  after(() => cleanup());
  const spawnControl = async () =>
    (
      await connectSpawned(
        root,
        { caps: CAPS },
        { SSH_CONNECTION: '127.0.0.1 50000 127.0.0.1 22', BCMR_RENDEZVOUS_TIMEOUT_SECS: '10' },
      )
    ).client;

  it('a flood from other hosts that never lets go cannot keep the ssh client out', async () => {
    // Before, any four connections took every place: the client was turned away for as long
    // as the flood went on. Three hosts: more than the shared places (two per source).
    const control = await spawnControl();
    const stop = floodNextRendezvous(control, (addr) => {
      const stops = ['127.0.0.2', '127.0.0.3', '127.0.0.4'].map((from) => persistentFlood(addr, from));
      return () => {
        for (const s of stops) s();
      };
    });
    try {
      const direct = await openDirect(control, CAPS);
      assert.equal((await direct.stat('')).isDir, true);
      await direct.close();
    } finally {
      stop();
      await control.destroy();
    }
  });

  it("idle connects from the client's own address hold their places 2 s: the client tries again and gets in", async () => {
    const control = await spawnControl();
    const stop = floodNextRendezvous(control, (addr) => idleConnects(addr, '127.0.0.1'));
    try {
      const t0 = Date.now();
      const direct = await openDirect(control, CAPS);
      const took = Date.now() - t0;
      assert.equal((await direct.stat('')).isDir, true);
      await direct.close();
      assert.ok(took >= 1000, `the places really were taken until the idle ones timed out (${took} ms)`);
    } finally {
      stop();
      await control.destroy();
    }
  });
});
