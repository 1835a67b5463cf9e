import net from 'node:net';

/**
 * A TCP relay in front of sshd (at `port`) that behaves like a flaky network: each connection
 * made through it is cut (RST on both sides, as a NAT or a dying link does) at a seeded random
 * moment `minMs`..`maxMs` after it opened, until `cuts` connections have been cut; from then
 * on the network is healed and everything passes. `log` says which connection was cut when,
 * so a test can prove the cuts happened.
 *
 * All connections share one link of `bytesPerSec` (both ways together): a copy of more than
 * `cuts * maxMs` worth of that rate cannot finish before the last cut has happened.
 */
export async function cuttingRelay(
  port: number,
  opts: { seed: number; cuts: number; minMs: number; maxMs: number; bytesPerSec: number },
) {
  const random = mulberry32(opts.seed);
  const log: { connection: number; afterMs: number }[] = [];
  const sockets = new Set<net.Socket>();
  let opened = 0;
  // When the shared link is free again (ms, performance.now()).
  let linkFreeAt = 0;
  const carry = (from: net.Socket, to: net.Socket) => {
    let waits = 0;
    const hold = () => {
      waits++;
      from.pause();
    };
    const release = () => {
      if (--waits === 0 && !from.destroyed) from.resume();
    };
    from.on('data', (b: Buffer) => {
      const now = performance.now();
      linkFreeAt = Math.max(now, linkFreeAt) + (b.length * 1000) / opts.bytesPerSec;
      if (!to.write(b)) {
        hold();
        to.once('drain', release);
      }
      const wait = linkFreeAt - now;
      if (wait > 5) {
        hold();
        setTimeout(release, wait);
      }
    });
    from.on('end', () => to.end());
  };
  const server = net.createServer((c) => {
    const index = opened++;
    const s = net.connect(port, '127.0.0.1');
    sockets.add(c);
    sockets.add(s);
    carry(c, s);
    carry(s, c);
    const forget = () => {
      sockets.delete(c);
      sockets.delete(s);
      clearTimeout(timer);
    };
    c.on('close', forget);
    c.on('error', () => s.destroy());
    s.on('error', () => c.destroy());
    s.on('close', () => c.destroy());
    let timer: NodeJS.Timeout | undefined;
    if (log.length < opts.cuts) {
      const afterMs = Math.round(opts.minMs + random() * (opts.maxMs - opts.minMs));
      timer = setTimeout(() => {
        if (log.length >= opts.cuts || c.destroyed) return;
        log.push({ connection: index, afterMs });
        c.resetAndDestroy();
        s.resetAndDestroy();
      }, afterMs);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    log,
    /** Connections made through the relay so far. */
    connections: () => opened,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A small seeded PRNG (mulberry32): the same seed gives the same cuts. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
