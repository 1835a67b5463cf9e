/** planRanges: the ranges of a striped file tile it exactly, on 4 MiB boundaries, 16-128 MiB each. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { missingRanges, planRanges } from '../../src/client/serve/stripe.js';

const MiB = 1 << 20;

test('ranges cover [0, size) once, in order, block-aligned and bounded', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 64 * 1024 * MiB }), fc.integer({ min: 2, max: 64 }), (size, n) => {
      const rs = planRanges('f', size, n);
      let at = 0;
      for (const [i, r] of rs.entries()) {
        assert.equal(r.file, 'f');
        assert.equal(r.offset, at);
        assert.ok(r.length > 0);
        if (i < rs.length - 1) {
          assert.equal(r.length % (4 * MiB), 0);
          assert.ok(r.length >= 16 * MiB && r.length <= 128 * MiB, `${r.length}`);
        }
        at += r.length;
      }
      assert.equal(at, size);
    }),
  );
});

test('about four ranges per connection when that keeps ranges within bounds', () => {
  assert.equal(planRanges('f', 1024 * MiB, 4).length, 16);
  assert.equal(planRanges('f', 1024 * MiB, 2).length, 8);
  assert.equal(planRanges('f', 64 * MiB, 4).length, 4);
});

test('missingRanges: exactly the blocks not present, within the planned ranges, in order', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2 * 1024 * MiB }),
      fc.integer({ min: 2, max: 16 }),
      fc.array(fc.boolean(), { maxLength: 600 }),
      (size, n, bits) => {
        const count = Math.ceil(size / (4 * MiB));
        const present = Array.from({ length: count }, (_, i) => bits[i % Math.max(1, bits.length)] ?? false);
        const rs = missingRanges(planRanges('f', size, n), present);
        // Every byte of a missing block is in exactly one range; no byte of a present block is.
        const covered = new Array<number>(count).fill(0);
        let last = -1;
        for (const r of rs) {
          assert.ok(r.offset > last, 'in order, not overlapping');
          assert.equal(r.offset % (4 * MiB), 0);
          assert.ok(r.length > 0 && r.offset + r.length <= size);
          for (let at = r.offset; at < r.offset + r.length; at += 4 * MiB) covered[at / (4 * MiB)]++;
          last = r.offset + r.length - 1;
        }
        for (let i = 0; i < count; i++) assert.equal(covered[i], present[i] ? 0 : 1, `block ${i}`);
        assert.deepEqual(missingRanges(planRanges('f', size, n), null), planRanges('f', size, n));
      },
    ),
  );
});
