/**
 * Raw TCP ceiling through the WAN path (bench/wan_link.ts):
 *   recv ADDR                          listens on ADDR, prints its port, drains every connection
 *   send ADDR PORT BYTES STREAMS       sends BYTES over STREAMS connections, prints MB/s
 * The time runs until the receiver has closed every connection, i.e. has read every byte.
 */
import net from 'node:net';

const [mode, addr, port, total, streams] = process.argv.slice(2);
if (mode === 'recv') {
  const server = net.createServer((sock) => {
    sock.on('data', () => {});
    sock.on('end', () => sock.end());
  });
  server.listen(0, addr, () => process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`));
} else {
  const n = Number(streams);
  const each = Math.floor(Number(total) / n);
  const chunk = Buffer.alloc(1 << 20);
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const sock = net.connect(Number(port), addr);
      sock.on('error', reject);
      sock.on('data', () => {});
      sock.on('close', () => resolve());
      let sent = 0;
      const pump = () => {
        while (sent < each) {
          const len = Math.min(chunk.length, each - sent);
          sent += len;
          if (!sock.write(len === chunk.length ? chunk : chunk.subarray(0, len))) return;
        }
        sock.end();
      };
      sock.on('drain', pump);
      sock.once('connect', pump);
    });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: n }, one));
  const s = (performance.now() - t0) / 1000;
  process.stdout.write(`${((each * n) / 1e6 / s).toFixed(1)}\n`);
}
