/**
 * A userspace TCP proxy that adds latency, for benchmarks where kernel netem is unavailable.
 * Each direction holds every chunk for `rtt / 2` and forwards chunks strictly in order; many
 * chunks are in flight at once (a pipe with delay, not stop-and-wait), so throughput is
 * limited by the endpoints' windows as on a real long link. A direction holding more than
 * `maxQueued` bytes stops reading its source until the queue drains (backpressure).
 */
import net from 'node:net';

export interface DelayProxy {
  port: number;
  close(): Promise<void>;
}

interface Held {
  due: number;
  chunk: Buffer;
}

function delayedPipe(from: net.Socket, to: net.Socket, delayMs: number, maxQueued: number): void {
  const queue: Held[] = [];
  let queued = 0;
  let timer: NodeJS.Timeout | null = null;
  let ended = false;
  const pump = (): void => {
    timer = null;
    const now = performance.now();
    while (queue.length > 0 && queue[0].due <= now) {
      const { chunk } = queue.shift() as Held;
      queued -= chunk.length;
      to.write(chunk);
    }
    if (queued + to.writableLength < maxQueued && from.isPaused()) from.resume();
    if (queue.length > 0) timer = setTimeout(pump, Math.max(0, queue[0].due - performance.now()));
    else if (ended) to.end();
  };
  from.on('data', (chunk: Buffer) => {
    queue.push({ due: performance.now() + delayMs, chunk });
    queued += chunk.length;
    if (queued + to.writableLength >= maxQueued) from.pause();
    if (!timer) timer = setTimeout(pump, delayMs);
  });
  from.on('end', () => {
    ended = true;
    if (!timer && queue.length === 0) to.end();
  });
  from.on('error', () => to.destroy());
  to.on('drain', () => {
    if (!timer) pump();
  });
}

export async function startDelayProxy(
  targetHost: string,
  targetPort: number,
  rttMs: number,
  maxQueued = 64 << 20,
): Promise<DelayProxy> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    delayedPipe(client, upstream, rttMs / 2, maxQueued);
    delayedPipe(upstream, client, rttMs / 2, maxQueued);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
