/** -P auto / --direct auto decisions from given round trips and work (client/path_choice.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { choosePath, maxAutoConnections } from '../../src/client/pool/path_choice.js';
import { STRIPE_MIN_BYTES } from '../../src/client/serve/policy.js';

const MiB = 1 << 20;
const GiB = 1 << 30;
const auto = { connections: 'auto', plane: 'auto' } as const;
const oneBigFile = { bytes: GiB, files: 1, largest: GiB };
const manySmall = { bytes: 10_000 * 64 * 1024, files: 10_000, largest: 64 * 1024 };

test('loopback and LAN: one connection, whatever the work; the direct plane for big files', () => {
  for (const rttMs of [0.05, 0.3, 2]) {
    for (const work of [oneBigFile, manySmall]) {
      const c = choosePath({ rttMs, directOffered: true, cores: 4 }, work, auto);
      assert.equal(c.connections, 1, `${rttMs} ms: ${c.why}`);
      // Big files over direct TCP (less CPU per byte); many small ones over ssh (a record each).
      assert.equal(c.plane, work === oneBigFile ? 'direct' : 'ssh', c.why);
      const ssh = choosePath({ rttMs, directOffered: false, cores: 4 }, work, auto);
      assert.equal(ssh.connections, 1, ssh.why);
      assert.equal(ssh.plane, 'ssh', ssh.why);
    }
    // Under a second of one ssh stream's work: not worth the rendezvous.
    const small = choosePath(
      { rttMs, directOffered: true, cores: 4 },
      { bytes: 100e6, files: 10, largest: 10e6 },
      auto,
    );
    assert.equal(small.plane, 'ssh', small.why);
  }
});

test('50 ms, one 1 GiB file: the direct plane, striped until the streams reach the ceiling', () => {
  const c = choosePath({ rttMs: 50, directOffered: true, cores: 4 }, oneBigFile, auto);
  assert.equal(c.plane, 'direct', c.why);
  // By hand: a direct stream carries 2.5 MiB per 50 ms = 52.4 MB/s; 250 MB/s takes
  // ceil(4.77) = 5 of them (at most 8 on 4 cores; 1 GiB is worth 20 at a second each).
  assert.equal(c.connections, 5, c.why);
  assert.match(c.why, /one stream ≤ 52 MB\/s; 5 reach 250 MB\/s/);
  assert.match(c.why, /rtt 50 ms/);
});

test('50 ms without a direct plane on the server: more ssh streams instead', () => {
  const c = choosePath({ rttMs: 50, directOffered: false, cores: 4 }, oneBigFile, auto);
  assert.equal(c.plane, 'ssh');
  // By hand: 2 MiB per 50 ms = 41.9 MB/s per ssh stream; ceil(250 / 41.9) = 6.
  assert.equal(c.connections, 6, c.why);
  assert.match(c.why, /offers no direct plane/);
});

test('where the ssh window starts to bind: 8 ms is not window-bound, 9 ms is (2 MiB / 250 MB/s = 8.4 ms)', () => {
  const at8 = choosePath({ rttMs: 8, directOffered: false, cores: 4 }, oneBigFile, auto);
  assert.equal(at8.connections, 1, at8.why);
  const at9 = choosePath({ rttMs: 9, directOffered: false, cores: 4 }, oneBigFile, auto);
  // 2 MiB per 9 ms = 233 MB/s: two streams reach 250.
  assert.equal(at9.connections, 2, at9.why);
});

test('100 ms: never more than two per core, 2 to 8', () => {
  for (const [cores, most] of [
    [1, 2],
    [2, 4],
    [4, 8],
    [64, 8],
  ]) {
    assert.equal(maxAutoConnections(cores), most);
    const c = choosePath({ rttMs: 100, directOffered: false, cores }, oneBigFile, auto);
    assert.equal(c.connections, most, c.why);
  }
});

test('never more connections than the work can use', () => {
  // Three small files: a handful of round trips on one connection; nothing to win.
  const few = choosePath(
    { rttMs: 50, directOffered: true, cores: 4 },
    { bytes: 3e6, files: 3, largest: 1e6 },
    auto,
  );
  assert.equal(few.connections, 1, few.why);
  assert.equal(few.plane, 'ssh', few.why);
  // One file too small to stripe: one connection, but the direct plane's larger window pays.
  const one = { bytes: 60 * MiB, files: 1, largest: 60 * MiB };
  assert.ok(one.largest < STRIPE_MIN_BYTES);
  const c = choosePath({ rttMs: 50, directOffered: true, cores: 4 }, one, auto);
  assert.equal(c.connections, 1, c.why);
  assert.equal(c.plane, 'direct', c.why);
  // Two files: two connections at most.
  const two = choosePath(
    { rttMs: 80, directOffered: false, cores: 4 },
    { bytes: 400e6, files: 2, largest: 60e6 },
    auto,
  );
  assert.equal(two.connections, 2, two.why);
});

test('what was asked for stands: -P N, --direct ssh|direct', () => {
  const p4 = choosePath({ rttMs: 50, directOffered: true, cores: 4 }, oneBigFile, {
    connections: 4,
    plane: 'auto',
  });
  assert.equal(p4.connections, 4);
  assert.equal(p4.plane, 'direct');
  const ssh = choosePath({ rttMs: 50, directOffered: true, cores: 4 }, oneBigFile, {
    connections: 'auto',
    plane: 'ssh',
  });
  assert.equal(ssh.plane, 'ssh');
  assert.equal(ssh.connections, 6, 'as above: 2 MiB per 50 ms, six streams reach 250 MB/s');
  const lo = choosePath({ rttMs: 0.1, directOffered: true, cores: 4 }, oneBigFile, {
    connections: 'auto',
    plane: 'direct',
  });
  assert.equal(lo.plane, 'direct');
  assert.equal(lo.connections, 1);
});

test('property: within bounds, within the work, and never fewer connections on a longer path', () => {
  const work = fc.record({
    files: fc.integer({ min: 1, max: 100_000 }),
    largest: fc.integer({ min: 0, max: 8 * GiB }),
    extra: fc.integer({ min: 0, max: 64 * GiB }),
  });
  fc.assert(
    fc.property(
      fc.double({ min: 0.01, max: 1000, noNaN: true }),
      fc.double({ min: 0, max: 500, noNaN: true }),
      fc.boolean(),
      fc.integer({ min: 1, max: 128 }),
      work,
      (rtt, more, directOffered, cores, w) => {
        const facts = { bytes: w.largest + w.extra, files: w.files, largest: w.largest };
        const a = choosePath({ rttMs: rtt, directOffered, cores }, facts, auto);
        const b = choosePath({ rttMs: rtt + more, directOffered, cores }, facts, auto);
        assert.ok(a.connections >= 1 && a.connections <= maxAutoConnections(cores));
        if (facts.largest < STRIPE_MIN_BYTES) assert.ok(a.connections <= facts.files, a.why);
        if (!directOffered) assert.equal(a.plane, 'ssh');
        if (a.plane === b.plane) assert.ok(b.connections >= a.connections, `${a.why} / ${b.why}`);
      },
    ),
  );
});
