#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm ci` (prepare) or `npm run build`.
import '../dist/src/cli/main.js';
