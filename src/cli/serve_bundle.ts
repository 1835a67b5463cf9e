/**
 * Entry of the single-file server bundle (`dist/bundle/bcmr-server.mjs`, built by esbuild in
 * `npm run build`): what a remote without bcmr runs on its own Node (20 or newer). Pure
 * JavaScript and WebAssembly: no native addon loads there, so BLAKE3 is hash-wasm's and LZ4
 * is left out of the caps; zstd where that Node has it. Same session, jail and exit statuses
 * as `bcmr serve`.
 */
import { describeError, exitCodeFor, UsageError } from '../errors.js';
import { boundYoungGeneration } from './heap.js';
import { runServe } from './serve.js';

function parse(argv: string[]): { root?: string } {
  const args = argv[0] === 'serve' ? argv.slice(1) : argv;
  const out: { root?: string } = {};
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--root' && i + 1 < args.length) out.root = args[++i];
    else throw new UsageError(`bcmr server bundle: unexpected argument ${args[i]}`);
  }
  return out;
}

boundYoungGeneration();

try {
  await runServe(parse(process.argv.slice(2)));
} catch (err) {
  process.stderr.write(`bcmr serve: ${describeError(err)}\n`);
  process.exitCode = exitCodeFor(err);
}
