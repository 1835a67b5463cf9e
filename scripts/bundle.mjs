// Builds the single-file server bundle shipped to remotes that have Node but no bcmr
// (issue 14): dist/bundle/bcmr-server.mjs from the compiled serve entry. Native addons stay
// out (their imports fail there and the runtime falls back: hash-wasm, no LZ4).
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/src/cli/serve_bundle.js'],
  outfile: 'dist/bundle/bcmr-server.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['lz4-napi', '@napi-rs/*'],
  legalComments: 'none',
  // The bundle is pure JS + WASM wherever it runs, even beside a node_modules with addons.
  banner: { js: "process.env.BCMR_PORTABLE = '1';" },
  logLevel: 'warning',
});
