/**
 * Imported by every test that runs the CLI or a server: the per-user cache (`$XDG_CACHE_HOME/bcmr`:
 * hosts with no bcmr server, V8's compile cache) and the default dedup store (`$XDG_DATA_HOME`) go
 * to a temp dir of this test process, never to the real home, removed when the process exits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

if (!process.env.BCMR_TEST_CACHE) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bcmr-test-cache-'));
  process.env.BCMR_TEST_CACHE = dir;
  process.env.XDG_CACHE_HOME = dir;
  // And the default dedup store of in-process servers ($XDG_DATA_HOME/bcmr/cas).
  process.env.XDG_DATA_HOME = dir;
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
}
