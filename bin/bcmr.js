#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm ci` (prepare) or `npm run build`.
// V8's compile cache saves part of the startup that every ssh connection pays for its remote
// `bcmr serve`. It lives in a directory private to this user (never the shared temp dir,
// whose cache another user could fill with code of theirs), or is not used.
import module from 'node:module';
import { privateCacheDir } from '../dist/src/util/private_dir.js';

if (module.enableCompileCache) {
  const dir = privateCacheDir('v8');
  if (dir) module.enableCompileCache(dir);
}
// `bcmr serve [--root DIR]`, as a bcmr client starts it on every connection: the server
// bundle (one file, native addons from this package) rather than the CLI and its modules.
const args = process.argv.slice(2);
const plainServe = args[0] === 'serve' && (args.length === 1 || (args.length === 3 && args[1] === '--root'));
if (plainServe && process.env.BCMR_SERVE_UNBUNDLED !== '1') {
  await import('../dist/bundle/bcmr-serve.mjs').catch(async (err) => {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
    await import('../dist/src/cli/main.js');
  });
} else {
  // A copy's first ssh starts before the CLI loads, to overlap its handshake (early_start.ts).
  if (['copy', 'cp', 'move', 'mv', 'sync'].includes(args[0]))
    await (await import('../dist/src/cli/early_start.js')).earlyStart(args.slice(1));
  await import('../dist/src/cli/main.js');
}
