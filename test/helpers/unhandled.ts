/** Collects the unhandled promise rejections that surface while `ms` milliseconds pass. */
export async function unhandledRejectionsWithin(ms: number): Promise<unknown[]> {
  const seen: unknown[] = [];
  const on = (e: unknown): void => {
    seen.push(e);
  };
  process.on('unhandledRejection', on);
  await new Promise((r) => setTimeout(r, ms));
  process.off('unhandledRejection', on);
  return seen;
}
