/**
 * Collects the unhandled promise rejections that surface until `settled()` says the operation
 * under test has failed (polled, with a deadline), and a few turns of the event loop after it:
 * Node reports a rejection nobody handles right after the microtasks of the turn it happened
 * in, so those turns are enough; no fixed sleep that a slow machine could outrun.
 */
export async function unhandledRejectionsOnce(
  settled: () => boolean,
  deadlineMs = 10_000,
): Promise<unknown[]> {
  const seen: unknown[] = [];
  const on = (e: unknown): void => {
    seen.push(e);
  };
  process.on('unhandledRejection', on);
  try {
    const deadline = Date.now() + deadlineMs;
    while (!settled()) {
      if (Date.now() > deadline) throw new Error(`the operation did not settle within ${deadlineMs} ms`);
      await new Promise((r) => setTimeout(r, 1));
    }
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    return seen;
  } finally {
    process.off('unhandledRejection', on);
  }
}
