import v8 from 'node:v8';

/**
 * Keeps V8's young generation at its initial size (1 MiB semi-spaces). A copy allocates
 * steadily (short-lived objects per file and per block, and up to a window of requests alive
 * at once), so V8 would grow the young generation to 2 x 32 MiB: that was 64 MB of a client's
 * 160-190 MB peak RSS on 10,000 files (issue 16's bound is 150 MB), for no CPU saved in
 * measurements. V8 reads the growth factor each time the space would grow, so setting it at
 * run time works (on Node 20's V8 too); the maximum size itself could only be set on the
 * command line, which `npx bcmr` does not control.
 */
export function boundYoungGeneration(): void {
  v8.setFlagsFromString('--semi-space-growth-factor=1');
}
