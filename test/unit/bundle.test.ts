/** The zero-install bundle is found where the build puts it (a move once lost it silently). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serverBundle } from '../../src/client/ssh/bundle.js';

test('serverBundle() finds the built bundle', () => {
  const b = serverBundle();
  assert.ok(b, 'dist/bundle/bcmr-server.mjs not found from src/client/ssh/bundle.ts');
  assert.ok(b.bytes.length > 100_000, `${b.bytes.length} bytes`);
  assert.match(b.sha256, /^[0-9a-f]{64}$/);
});
