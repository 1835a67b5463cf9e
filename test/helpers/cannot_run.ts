/**
 * One rule for suites that need something this machine may lack (an older Node, a login
 * shell, root, the Rust binaries, /dev/shm on its own filesystem): without it the suite says
 * so in one line on stderr and is skipped with that reason, visible in the report. Where every
 * suite must run (`BCMR_TEST_ALL=1`, set by `.ci/run`), it fails instead: CI never passes with
 * a suite quietly left out.
 */
export const ALL_REQUIRED = process.env.BCMR_TEST_ALL === '1';

/** `why` (a skip reason) or false; under BCMR_TEST_ALL=1 a reason throws instead. */
export function cannotRun(why: string | false | null): string | false {
  if (!why) return false;
  if (ALL_REQUIRED) throw new Error(`${why} (BCMR_TEST_ALL=1: every suite must run here)`);
  process.stderr.write(`${why}\n`);
  return why;
}
