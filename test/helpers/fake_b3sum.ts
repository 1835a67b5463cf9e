/**
 * A stand-in for BLAKE3's `b3sum --no-names -- FILE...` on a test remote that has none: one hex
 * digest per file, in order. BCMR_B3SUM_LIE=NAME makes it print a wrong digest for files of that
 * basename, as a remote whose staged copy went bad would.
 */
import path from 'node:path';
import { fileHashHex } from '../../src/codec/hash.js';

const args = process.argv.slice(2);
const files = args.includes('--')
  ? args.slice(args.indexOf('--') + 1)
  : args.filter((a) => !a.startsWith('-'));
let failed = false;
for (const f of files) {
  try {
    const h = await fileHashHex(f);
    process.stdout.write(`${path.basename(f) === process.env.BCMR_B3SUM_LIE ? '0'.repeat(64) : h}\n`);
  } catch (err) {
    process.stderr.write(`b3sum: ${f}: ${(err as Error).message}\n`);
    failed = true;
  }
}
process.exitCode = failed ? 1 : 0;
