/**
 * A TCP proxy that counts the bytes it forwards each way: the bench's "bytes on the wire" for
 * tools that speak over one ssh connection (bcmr over ssh, rsync). It adds one userspace hop,
 * the same for every tool measured through it.
 */
import net from 'node:net';

export interface CountingProxy {
  port: number;
  /** Bytes client → server and server → client since the last `take`, then zeroed. */
  take(): { sent: number; received: number };
  close(): Promise<void>;
}

export async function startCountingProxy(targetHost: string, targetPort: number): Promise<CountingProxy> {
  const sockets = new Set<net.Socket>();
  let sent = 0;
  let received = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (b: Buffer) => {
      sent += b.length;
    });
    upstream.on('data', (b: Buffer) => {
      received += b.length;
    });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    take() {
      const r = { sent, received };
      sent = 0;
      received = 0;
      return r;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
