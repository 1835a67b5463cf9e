/**
 * `BCMR_TRACE=1`: a run's milestones on stderr, in ms since the process started, to see where
 * the fixed cost of a short run goes (start-up, handshake, listing, comparing, exit).
 */
const on = process.env.BCMR_TRACE === '1';

export function trace(what: string): void {
  if (on) process.stderr.write(`bcmr trace ${performance.now().toFixed(1).padStart(7)} ms  ${what}\n`);
}
