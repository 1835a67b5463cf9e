/**
 * A flaky network: the real sshd behind a relay that cuts connections (RST) at seeded random
 * moments, three times, then heals. A tree copy up and down at -P 1 and -P 4 must complete by
 * itself, exactly, whichever phase the cuts hit (connecting, listing, measuring, moving data).
 * With cuts that never stop, the copy gives up in bounded time and says so in one line.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { cuttingRelay } from '../helpers/cutting_relay.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, jsonEvents, leftovers, snapshot } from './run.js';

const FILES = 1000;
/** 16 MiB over a 4 MiB/s link: 4 s of data, more than three connections live before their cut. */
const FILE_BYTES = 16 << 10;
const LINK_BYTES_PER_SEC = 4 << 20;
const CUTS = { cuts: 3, minMs: 200, maxMs: 1200 };

let sshd: SshServer;
let dir: string;
let cleanup: () => Promise<void>;
const baseSeed = Number(process.env.BCMR_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));

before(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = await tempDir('bcmr-e2e-flaky-'));
  const tree = path.join(dir, 'src/tree');
  for (let i = 0; i < FILES; i++) {
    const sub = path.join(tree, `d${i % 20}`);
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, `f${i}`), randomBytes(FILE_BYTES + (i % 7) * 100));
  }
});

after(async () => {
  await sshd?.stop();
  await cleanup?.();
});

type Relay = Awaited<ReturnType<typeof cuttingRelay>>;

/**
 * Runs `body` with a cutting relay in front of the harness's sshd (cuts as `cuts` says, on the
 * shared 4 MiB/s link), reached as host `name`, and a fresh destination directory `name`.
 */
async function throughRelay(
  name: string,
  cuts: { seed: number; cuts: number; minMs: number; maxMs: number },
  body: (relay: Relay, dest: string) => Promise<void>,
): Promise<void> {
  const relay = await cuttingRelay(sshd.port, { ...cuts, bytesPerSec: LINK_BYTES_PER_SEC });
  sshd.addAlias(name, '127.0.0.1', relay.port);
  const dest = path.join(dir, name);
  fs.mkdirSync(dest);
  try {
    await body(relay, dest);
  } finally {
    await relay.close();
  }
}

describe('a flaky network: three cuts, then it heals', () => {
  let cell = 0;
  for (const direction of ['up', 'down'] as const) {
    for (const parallel of [1, 4]) {
      test(`copy -r ${direction} at -P ${parallel} completes by itself`, async () => {
        const seed = baseSeed + cell++;
        const host = `bcmr-flaky-${direction}-${parallel}`;
        await throughRelay(host, { seed, ...CUTS }, async (relay, dest) => {
          const [src, dst] =
            direction === 'up' ? ['src/tree', `${host}:${dest}/`] : [`${host}:${dir}/src/tree`, `${dest}/`];
          const r = await bcmr(
            ['copy', '--rsh', sshd.rsh, '--json', '-r', '-P', String(parallel), src, dst],
            {
              cwd: dir,
            },
          );
          const why = `seed ${seed} (BCMR_TEST_SEED=${seed - cell + 1} repeats this run), cuts ${JSON.stringify(relay.log)}\n${r.stderr}`;
          assert.equal(relay.log.length, CUTS.cuts, `the network was not cut ${CUTS.cuts} times: ${why}`);
          assert.equal(r.code, 0, why);
          const files = jsonEvents(r.stdout).filter((e) => e.event === 'file');
          assert.equal(files.length, FILES, why);
          assert.ok(
            files.every((e) => e.outcome === 'ok'),
            why,
          );
          assert.deepEqual(snapshot(path.join(dest, 'tree')), snapshot(path.join(dir, 'src/tree')), why);
          assert.deepEqual(leftovers(dest), [], why);
        });
      });
    }
  }

  test('three cuts while connecting (each connection cut within 300 ms): retried there too', async () => {
    const seed = baseSeed + 100;
    await throughRelay(
      'bcmr-flaky-connect',
      { seed, cuts: 3, minMs: 20, maxMs: 300 },
      async (relay, dest) => {
        const r = await bcmr(
          ['copy', '--rsh', sshd.rsh, '-P', '1', '-r', 'src/tree/d0', `bcmr-flaky-connect:${dest}/`],
          { cwd: dir },
        );
        const why = `seed ${seed}, cuts ${JSON.stringify(relay.log)}\n${r.stderr}`;
        assert.equal(relay.log.length, 3, why);
        assert.deepEqual(
          relay.log.map((c) => c.connection),
          [0, 1, 2],
          `the first three connections, each before its handshake could finish: ${why}`,
        );
        assert.equal(r.code, 0, why);
        assert.deepEqual(snapshot(path.join(dest, 'd0')), snapshot(path.join(dir, 'src/tree/d0')), why);
      },
    );
  });

  test('cuts that never stop: the copy gives up, bounded, in one line with its attempts', async () => {
    const forever = { seed: baseSeed, cuts: Number.POSITIVE_INFINITY, minMs: 50, maxMs: 150 };
    await throughRelay('bcmr-flaky-forever', forever, async (relay, dest) => {
      const r = await bcmr(
        ['copy', '--rsh', sshd.rsh, '--retries', '2', '-r', 'src/tree', `bcmr-flaky-forever:${dest}/`],
        { cwd: dir },
      );
      assert.notEqual(r.code, 0, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /gave up after 3 attempts; --retries to change/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.ok(relay.connections() >= 3, `only ${relay.connections()} connections were tried`);
    });
  });
});
