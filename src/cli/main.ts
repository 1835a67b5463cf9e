/**
 * Entry point: commands, and what escapes them as one line and an exit status (`exitCodeFor`
 * in errors.ts, the one mapping; stack traces only with BCMR_DEBUG=1).
 */
import { readFileSync } from 'node:fs';

import { Command, CommanderError } from 'commander';
import { describeError, ExitCode, exitCodeFor } from '../errors.js';
import { boundYoungGeneration } from './heap.js';

boundYoungGeneration();

const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/**
 * Every process loads only what its command runs: a remote `bcmr serve` (started once per
 * connection) never loads the copy or deploy code, a copy never loads deploy's, and only
 * `--version` loads the codecs to describe them. Help (no known command) loads them all.
 */
const sub = process.argv[2];
const isCopy = ['copy', 'cp', 'move', 'mv', 'sync', 'check'].includes(sub ?? '');
const isRemove = sub === 'remove' || sub === 'rm';
const isInspect = ['ls', 'stat', 'du', 'hash'].includes(sub ?? '');
const known =
  isCopy ||
  isRemove ||
  isInspect ||
  ['serve', 'deploy', 'status', 'completions', 'doctor'].includes(sub ?? '');

async function versionLine(): Promise<string> {
  if (!process.argv.includes('--version')) return version;
  const [{ codecsDescription }, { blake3Impl }] = await Promise.all([
    import('../codec/block.js'),
    import('../codec/hash.js'),
  ]);
  return `${version}\nblake3: ${blake3Impl.name}\ncodecs: ${codecsDescription()}\nnode: ${process.version}`;
}

const program = new Command();
program
  .name('bcmr')
  .description('Fast file copy, locally and over SSH')
  .version(
    await versionLine(),
    '--version',
    'print the version, the BLAKE3 implementation and the codecs, and exit',
  )
  .option('--json', 'machine-readable NDJSON events on stdout')
  .exitOverride();

/** Set by commands that finish with a status of their own (copy: 1 when some files failed). */
let commandExit: number = ExitCode.ok;
if (isCopy || !known) {
  const { addCopyCommand } = await import('./copy_command.js');
  addCopyCommand(program, (code) => {
    commandExit = code;
  });
}
if (isRemove || !known)
  (await import('./remove_command.js')).addRemoveCommand(program, (code) => {
    commandExit = code;
  });
if (isInspect || !known)
  (await import('./inspect_command.js')).addInspectCommands(program, (code) => {
    commandExit = code;
  });
if (sub === 'status' || !known)
  (await import('./status_command.js')).addStatusCommand(program, (code) => {
    commandExit = code;
  });
// `__complete` (on TAB) is not `known`: it needs every command's options.
if (sub === 'completions' || !known) (await import('./completions.js')).addCompletionCommands(program);
if (sub === 'doctor' || !known)
  (await import('./doctor_command.js')).addDoctorCommand(program, (code) => {
    commandExit = code;
  });
if (sub === 'deploy' || !known) (await import('./deploy_command.js')).addDeployCommand(program);

program
  .command('serve')
  .description('Speak the bcmr protocol on stdin/stdout (started by a remote bcmr client over ssh)')
  .option('--root <dir>', 'confine every path to DIR (default: home directory)')
  .option('--listen <addr>', 'serve plain frames on a loopback TCP address (testing aid)')
  .action(async (opts: { root?: string; listen?: string }) => {
    const { runServe } = await import('./serve.js');
    await runServe(opts);
  });

if (sub === '__complete')
  await (await import('./completions.js')).runComplete(program, process.argv.slice(3));

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
