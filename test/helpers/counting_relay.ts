import net from 'node:net';

/**
 * A TCP relay in front of sshd (at `port`) that counts the bytes going to the server over all
 * connections made through it (an upload's wire bytes, ssh framing included), and can hold
 * every connection's upload once `holdAfter` bytes went through, until `release()`.
 */
export async function countingRelay(port: number, holdAfter = Number.POSITIVE_INFINITY) {
  let up = 0;
  let held = false;
  let released = false;
  const pairs = new Set<{ c: net.Socket; s: net.Socket }>();
  const server = net.createServer((c) => {
    const s = net.connect(port, '127.0.0.1');
    const pair = { c, s };
    pairs.add(pair);
    c.on('data', (b: Buffer) => {
      up += b.length;
      if (!s.write(b)) c.pause();
      if (up >= holdAfter && !held && !released) {
        held = true;
        for (const p of pairs) p.c.pause();
      }
    });
    s.on('drain', () => !held && c.resume());
    s.pipe(c);
    c.on('end', () => s.end());
    c.on('close', () => pairs.delete(pair));
    c.on('error', () => s.destroy());
    s.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    up: () => up,
    release() {
      held = false;
      released = true;
      for (const p of pairs) if (!p.s.writableNeedDrain) p.c.resume();
    },
    close: () => new Promise((r) => server.close(r)),
  };
}
