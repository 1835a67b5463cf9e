/** Temp names beside a destination: data is written there and renamed in when verified. */
import { randomBytes } from 'node:crypto';
import path from 'node:path';

export const TEMP_MARKER = '.bcmr-tmp-';

/** Random per process, then a counter: unique without a random draw per file. */
const prefix = randomBytes(3).toString('hex');
let counter = 0;

export function tempNameFor(dest: string): string {
  counter = (counter + 1) % 0x1000000;
  return path.join(
    path.dirname(dest),
    `.${path.basename(dest)}${TEMP_MARKER}${prefix}${counter.toString(16).padStart(6, '0')}`,
  );
}
