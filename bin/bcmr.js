#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm ci` (prepare) or `npm run build`.
// V8's compile cache (in the OS temp dir) saves part of the startup that every ssh
// connection pays for its remote `bcmr serve`.
import module from 'node:module';

module.enableCompileCache?.();
await import('../dist/src/cli/main.js');
