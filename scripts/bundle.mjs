// Builds the single-file server bundles from the compiled serve entry:
// - dist/bundle/bcmr-server.mjs, shipped to remotes that have Node but no bcmr (issue 14).
//   Native addons stay out (their imports fail there and the runtime falls back: hash-wasm,
//   no LZ4).
// - dist/bundle/bcmr-serve.mjs, what an installed `bcmr serve` runs (bin/bcmr.js): the same
//   code in one file, its native addons loaded from the package beside it. One file parses
//   and links faster than the ~90 modules it is made of: every connection's server starts
//   ~20 ms sooner (issue 27).
import { build } from 'esbuild';

const common = {
  entryPoints: ['dist/src/cli/serve_bundle.js'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['lz4-napi', '@napi-rs/*'],
  legalComments: 'none',
  logLevel: 'warning',
};

await build({ ...common, outfile: 'dist/bundle/bcmr-serve.mjs' });

await build({
  ...common,
  outfile: 'dist/bundle/bcmr-server.mjs',
  // The bundle is pure JS + WASM wherever it runs, even beside a node_modules with addons.
  banner: { js: "process.env.BCMR_PORTABLE = '1';" },
});
