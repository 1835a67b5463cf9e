/** Temp names beside a destination: data is written there and renamed in when verified. */
import { randomBytes } from 'node:crypto';
import path from 'node:path';

export const TEMP_MARKER = '.bcmr-tmp-';

export function tempNameFor(dest: string): string {
  return path.join(
    path.dirname(dest),
    `.${path.basename(dest)}${TEMP_MARKER}${randomBytes(4).toString('hex')}`,
  );
}
