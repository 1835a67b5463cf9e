/**
 * --bwlimit through the real sshd: the total rate holds both ways, over several connections
 * and on the plain-ssh fallback (64 MiB at 8M takes 8 s within 10 %), and the limiter itself
 * gives a steady rate, not bursts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { blake3Hex } from '../../src/codec/hash.js';
import { parseRate, RateLimiter } from '../../src/transport/rate_limit.js';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, jsonEvents } from './run.js';

const MiB = 1 << 20;

describe('RateLimiter', () => {
  test('parseRate reads rates as rsync does (binary units, KiB by default)', () => {
    assert.equal(parseRate('8M'), 8 * MiB);
    assert.equal(parseRate('500K'), 500 * 1024);
    assert.equal(parseRate('1.5MiB/s'), 1.5 * MiB);
    assert.equal(parseRate('100'), 100 * 1024);
    assert.equal(parseRate('2g'), 2 * 1024 * MiB);
    for (const bad of ['', 'fast', '-1M', '0', '10X']) assert.equal(parseRate(bad), null, bad);
  });

  test('takers together get the rate, evenly: no 100 ms window carries more than its share', async () => {
    const rate = 4 * MiB;
    const limiter = new RateLimiter(rate);
    const stamps: { t: number; n: number }[] = [];
    const t0 = performance.now();
    // Three takers at once, as three connections would be.
    await Promise.all(
      [0, 1, 2].map(async () => {
        for (let i = 0; i < 16; i++) {
          await limiter.out.take(64 * 1024);
          stamps.push({ t: performance.now() - t0, n: 64 * 1024 });
        }
      }),
    );
    const total = stamps.reduce((s, x) => s + x.n, 0);
    const secs = (performance.now() - t0) / 1000;
    const burst = Math.max(64 * 1024, rate / 20);
    assert.ok(Math.abs(secs - (total - burst) / rate) < 0.15, `${total} B in ${secs} s at ${rate} B/s`);
    for (let w = 0; w < secs * 1000; w += 50) {
      const inWindow = stamps.filter((s) => s.t >= w && s.t < w + 100).reduce((s, x) => s + x.n, 0);
      assert.ok(inWindow <= rate * 0.1 + burst + 64 * 1024, `${inWindow} B between ${w} and ${w + 100} ms`);
    }
  });
});

describe('--bwlimit through the real sshd', () => {
  let sshd: SshServer;
  let dir: string;
  let cleanup: () => Promise<void>;
  const data = randomBytes(64 * MiB);
  before(async () => {
    sshd = await startSshd();
    ({ dir, cleanup } = await tempDir('bcmr-e2e-bwlimit-'));
    fs.writeFileSync(path.join(dir, 'big.bin'), data);
    fs.writeFileSync(path.join(dir, 'half.bin'), data.subarray(0, 32 * MiB));
  });
  after(async () => {
    await sshd?.stop();
    await cleanup?.();
  });

  /** Seconds the copy took by its own summary (the transfer, not Node's start). */
  async function timed(args: string[]): Promise<number> {
    const r = await bcmr(['copy', '--json', '--bwlimit', '8M', ...args, '--rsh', sshd.rsh], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const summary = jsonEvents(r.stdout).find((e) => e.event === 'summary');
    return Number(summary?.seconds);
  }

  const cases: [string, () => string[], string, number][] = [
    ['64 MiB up, one connection', () => ['big.bin', 'bcmr-test:up.bin'], 'home/up.bin', 8],
    [
      '32 MiB down over 4 connections',
      () => ['-P', '4', `bcmr-test:${path.join(dir, 'half.bin')}`, 'down.bin'],
      'down.bin',
      4,
    ],
    ['32 MiB up through the plain-ssh fallback', () => ['half.bin', 'bcmr-nonode:fb.bin'], 'home/fb.bin', 4],
  ];
  for (const [what, args, file, secs] of cases) {
    test(`${what}: ${secs} s within 10 %`, async () => {
      const took = await timed(args());
      assert.ok(Math.abs(took - secs) <= secs * 0.1, `${what} took ${took} s, not ${secs} s`);
      const at = file.startsWith('home/') ? path.join(sshd.home, file.slice(5)) : path.join(dir, file);
      assert.equal(blake3Hex(fs.readFileSync(at)), blake3Hex(secs === 8 ? data : data.subarray(0, 32 * MiB)));
    });
  }
});
