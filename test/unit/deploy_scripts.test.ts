// deploy's scripts carry one value, a SHA-256: anything else must never reach their text.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deployScript, runtimeScript } from '../../src/client/shell/deploy_scripts.js';

const good = 'ab'.repeat(32);

test('deploy scripts take a SHA-256 digest and nothing else', () => {
  for (const build of [deployScript, runtimeScript]) {
    assert.match(build(good), new RegExp(good));
    for (const bad of ['$(id>PWNED)', `${good.slice(0, 63)}\``, `${good};id`, good.toUpperCase(), ''])
      assert.throws(() => build(bad), /not a SHA-256 digest/, `accepted ${JSON.stringify(bad)}`);
  }
});
