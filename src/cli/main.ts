/**
 * Entry point. The only place that turns errors into exit statuses and one-line messages
 * (stack traces only with BCMR_DEBUG=1).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { codecsDescription } from '../codec/block.js';
import { blake3Impl } from '../codec/hash.js';
import { describeError, ExitCode, exitCodeFor } from '../errors.js';
import { addCopyCommand } from './copy_command.js';
import { addDeployCommand } from './deploy_command.js';
import { boundYoungGeneration } from './heap.js';
import { runServe } from './serve.js';

boundYoungGeneration();

const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const program = new Command();
program
  .name('bcmr')
  .description('Fast file copy, locally and over SSH')
  .version(
    `${version}\nblake3: ${blake3Impl.name}\ncodecs: ${codecsDescription()}\nnode: ${process.version}`,
    '--version',
    'print the version, the BLAKE3 implementation and the codecs, and exit',
  )
  .option('--json', 'machine-readable NDJSON events on stdout')
  .exitOverride();

/** Set by commands that finish with a status of their own (copy: 1 when some files failed). */
let commandExit: number = ExitCode.ok;
addCopyCommand(program, (code) => {
  commandExit = code;
});
addDeployCommand(program);

program
  .command('serve')
  .description('Speak the bcmr protocol on stdin/stdout (started by a remote bcmr client over ssh)')
  .option('--root <dir>', 'confine every path to DIR (default: home directory)')
  .option('--listen <addr>', 'serve plain frames on a loopback TCP address (testing aid)')
  .action(async (opts: { root?: string; listen?: string }) => {
    await runServe(opts);
  });

async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return commandExit;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    const cmd = argv[2] === 'serve' ? 'bcmr serve' : 'bcmr';
    process.stderr.write(`${cmd}: ${describeError(err)}\n`);
    if (process.env.BCMR_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return exitCodeFor(err);
  }
}

// A closed pipe on our stdout is the peer going away, not a crash.
process.stdout.on('error', () => process.exit(ExitCode.failed));

let finished = false;
// An await that can never settle would otherwise end the process with status 0: a script must
// never read success from a copy that did not finish.
process.on('beforeExit', () => {
  if (finished) return;
  finished = true;
  process.stderr.write('bcmr: internal error: stopped before the work finished\n');
  process.exitCode = ExitCode.failed;
});

main(process.argv).then((code) => {
  finished = true;
  process.exitCode = code;
});
