/** The benchmark's delay proxy: adds the RTT, keeps order, keeps many chunks in flight. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { test } from 'node:test';
import { startDelayProxy } from '../../bench/delay_proxy.js';

/**
 * A long RTT makes the two behaviours far apart: pipelined, the 64 pieces take about one RTT;
 * stop-and-wait they would take 64 RTTs. The bound sits at 8 RTTs, so a loaded machine does not
 * fail it, while a proxy that waits per chunk always does.
 */
const RTT = 300;

test('echo through the proxy: RTT added once per round trip, bytes intact and in order', async () => {
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const proxy = await startDelayProxy('127.0.0.1', (echo.address() as net.AddressInfo).port, RTT);
  try {
    const sock = net.connect(proxy.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const payload = randomBytes(4 << 20);
    const got: Buffer[] = [];
    let n = 0;
    const t0 = performance.now();
    const done = new Promise<number>((resolve) =>
      sock.on('data', (b: Buffer) => {
        got.push(b);
        n += b.length;
        if (n >= payload.length) resolve(performance.now() - t0);
      }),
    );
    // Written in many pieces: a stop-and-wait proxy would pay the RTT for each.
    for (let i = 0; i < payload.length; i += 64 << 10) sock.write(payload.subarray(i, i + (64 << 10)));
    const ms = await done;
    assert.ok(Buffer.concat(got).equals(payload));
    assert.ok(ms >= RTT - 2, `took ${ms.toFixed(0)} ms, expected at least the ${RTT} ms RTT`);
    assert.ok(ms < RTT * 8, `took ${ms.toFixed(0)} ms: chunks should be pipelined, not sent one RTT each`);
    sock.destroy();
  } finally {
    await proxy.close();
    echo.close();
  }
});
