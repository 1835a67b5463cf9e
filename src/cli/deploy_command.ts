/**
 * `bcmr deploy HOST`: installs the server bundle for good on a remote: the bundle as
 * `~/.local/share/bcmr/bcmr-server.mjs` (0600 in a 0700 dir, SHA-256 verified on the remote)
 * and a `~/.local/bin/bcmr` launcher, each written to a temp name and renamed (so a rerun is
 * idempotent and an interrupted one leaves the old install whole). The copy command finds the
 * launcher even when `~/.local/bin` is not on a non-interactive PATH.
 *
 * `--with-node`: when the remote has no Node 20+, the Node runtime this bcmr runs on is shipped
 * too (`~/.local/share/bcmr/node`, gzip on the wire, SHA-256 checked on the remote and run once
 * before it is published), provided the remote's `uname -sm` is the local one.
 * `--check` says what the remote has; `--remove` undoes a deploy (only files it wrote).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import os from 'node:os';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Command } from 'commander';
import { CHECK_SCRIPT, deployScript, REMOVE_SCRIPT, runtimeScript } from '../client/shell/deploy_scripts.js';
import { bootstrap } from '../client/shell/remote_shell.js';
import { serverBundle } from '../client/ssh/bundle.js';
import { runRemote } from '../client/ssh/run_remote.js';
import type { SshConfig } from '../client/ssh/ssh_start.js';
import { hostLabel, parseEndpoint, type RemoteEndpoint } from '../core/endpoint.js';
import { RemoteError, UsageError } from '../errors.js';
import { splitCommand } from '../util/shell.js';

interface DeployOptions {
  check?: boolean;
  remove?: boolean;
  withNode?: boolean;
  rsh?: string;
}

export function addDeployCommand(program: Command): void {
  program
    .command('deploy')
    .description(
      'Install the bcmr server on HOST for good (needs Node 20+ there, or --with-node), or --check / --remove',
    )
    .argument('<host>', '[user@]host')
    .option('--check', 'say what the remote has: OS, bcmr, node, a deployed bundle and runtime')
    .option('--remove', 'remove what bcmr deploy installed')
    .option(
      '--with-node',
      "also ship this bcmr's Node runtime when the remote has no Node 20+ (same OS and CPU)",
    )
    .option('--rsh <cmd>', 'ssh command to use (env BCMR_RSH)')
    .action(async (host: string, opts: DeployOptions) => {
      await deploy(host, opts);
    });
}

/** What `--check` reported, as --with-node needs it. */
interface RemoteFacts {
  os: string;
  nodeMajor: number | null;
  deployedNodeMajor: number | null;
  gzip: boolean;
  sha256: boolean;
}

function parseFacts(checkOutput: string): RemoteFacts {
  const line = (key: string) => checkOutput.match(new RegExp(`^${key}: (.*)$`, 'm'))?.[1] ?? '';
  const major = (s: string) => {
    const m = s.match(/ v(\d+)\./);
    return m ? Number(m[1]) : null;
  };
  const tools = line('tools');
  return {
    os: line('os').trim(),
    nodeMajor: major(line('node')),
    deployedNodeMajor: major(line('deployed node')),
    gzip: /gzip yes/.test(tools),
    sha256: /sha256 yes/.test(tools),
  };
}

/** This runtime's `uname -sm` (os.machine is uname's machine field). */
function localOs(): string {
  return `${os.type()} ${os.machine()}`;
}

async function deploy(host: string, opts: DeployOptions): Promise<void> {
  const target = parseEndpoint(host.includes(':') ? host : `${host}:`);
  if (target.kind !== 'remote') throw new UsageError(`deploy needs a host, not ${host}`);
  const rsh = splitCommand(opts.rsh ?? process.env.BCMR_RSH ?? 'ssh');
  const cfg: SshConfig = { rsh };
  const run = async (script: string, input?: Uint8Array | Readable) => {
    // The script goes first on stdin, never through the login shell (csh, fish: remote_shell.ts).
    const text = Buffer.from(script);
    const data =
      input instanceof Readable
        ? Readable.from(
            (async function* () {
              yield text;
              yield* input;
            })(),
          )
        : Buffer.concat([text, input ?? new Uint8Array(0)]);
    const r = await runRemote(cfg, target as RemoteEndpoint, bootstrap(text), { input: data });
    if (r.code !== 0) {
      const why = r.stderr.trim().split('\n').pop() || `exit ${r.code}`;
      throw new RemoteError(`deploy on ${hostLabel(target as RemoteEndpoint)} failed: ${why}`);
    }
    return r.stdout.toString('utf8');
  };
  if (opts.check) return void process.stdout.write(await run(CHECK_SCRIPT));
  if (opts.remove) return void process.stdout.write(await run(REMOVE_SCRIPT));
  const bundle = serverBundle();
  if (!bundle) throw new UsageError('the server bundle is not built (npm run build)');
  if (opts.withNode) process.stdout.write(await shipRuntime(run));
  process.stdout.write(await run(deployScript(bundle.sha256), bundle.bytes));
}

/** --with-node: ships process.execPath when the remote needs a runtime and can run this one. */
async function shipRuntime(run: (script: string, input?: Uint8Array | Readable) => Promise<string>) {
  const facts = parseFacts(await run(CHECK_SCRIPT));
  if ((facts.nodeMajor ?? 0) >= 20) return `the remote has node ${facts.nodeMajor}: no runtime shipped\n`;
  if ((facts.deployedNodeMajor ?? 0) >= 20)
    return `the remote has a deployed node ${facts.deployedNodeMajor}: kept\n`;
  const here = localOs();
  if (facts.os !== here) {
    throw new UsageError(
      `--with-node: the remote is '${facts.os || 'unknown'}' and this runtime is '${here}': install Node 20+ on the remote`,
    );
  }
  if (!facts.gzip || !facts.sha256) {
    throw new UsageError(
      '--with-node: the remote needs gzip and sha256sum, shasum or openssl to receive a runtime',
    );
  }
  const hash = createHash('sha256');
  await pipeline(createReadStream(process.execPath), hash);
  // level 1: ~3x smaller than the binary at a fraction of level 6's CPU.
  const wire = createReadStream(process.execPath).pipe(createGzip({ level: 1 }));
  return run(runtimeScript(hash.digest('hex')), wire);
}
