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
await import('../dist/src/cli/main.js');
