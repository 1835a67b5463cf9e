/**
 * `bcmr check SRC DST`: what a sync would change, changing nothing. One line per difference on
 * stdout (`+ path` only in SRC, `~ path` different, `- path` only in DST), or with --json one
 * `difference` event each and an `end` event; exit 0 alike, 1 different, 2 on error.
 */
import { describeError, ExitCode, exitCodeFor } from '../errors.js';
import type { CopyOptions } from '../transfer/copy.js';

const MARK = { added: '+', modified: '~', removed: '-' } as const;

export async function checkMain(
  src: string,
  dst: string,
  checksum: boolean,
  noHash: boolean,
  options: () => CopyOptions,
  json: boolean,
): Promise<number> {
  const emit = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.on('SIGINT', onSignal);
  try {
    const { runCheck } = await import('../transfer/check.js');
    const opts = options();
    const { differences, failures } = await runCheck(
      src,
      dst,
      { ...opts, checksum, noHash },
      (msg) => process.stderr.write(`bcmr: ${msg}\n`),
      ac.signal,
    );
    for (const d of differences) {
      if (json) emit({ event: 'difference', ...d });
      else process.stdout.write(`${MARK[d.kind]} ${d.path}\n`);
    }
    for (const f of failures) {
      if (json) emit({ event: 'error', path: f.path, error: f.error.message });
      else process.stderr.write(`bcmr: ${f.error.message}\n`);
    }
    const code = checkExit(differences.length, failures.length);
    if (json) emit({ event: 'end', code, differences: differences.length, errors: failures.length });
    return code;
  } catch (err) {
    const code = Math.max(exitCodeFor(err), ExitCode.usage);
    if (json) emit({ event: 'end', code, error: describeError(err) });
    else process.stderr.write(`bcmr: ${describeError(err)}\n`);
    return code;
  } finally {
    process.off('SIGINT', onSignal);
  }
}

/** As the Rust bcmr's check: 2 when anything could not be compared, else 1 when different. */
function checkExit(differences: number, errors: number): number {
  if (errors > 0) return ExitCode.usage;
  return differences > 0 ? ExitCode.failed : ExitCode.ok;
}
