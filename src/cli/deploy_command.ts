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
import { serverBundle } from '../client/bundle.js';
import { bootstrap, SHA256_FN } from '../client/remote_shell.js';
import { runRemote, type SshConfig } from '../client/ssh.js';
import { hostLabel, parseEndpoint, type RemoteEndpoint } from '../core/endpoint.js';
import { RemoteError, UsageError } from '../errors.js';
import { shellQuote, splitCommand } from '../util/shell.js';

/** First line of the launcher: how --remove knows the file is ours. */
const LAUNCHER_MARK = '# bcmr launcher (bcmr deploy)';

/** Where deploy puts its files on the remote (shell text, expanded there). */
const SHARE = '$HOME/.local/share/bcmr';

/** Sets `n` to the Node to run: the runtime deploy shipped, else the PATH's, else empty. */
const PICK_NODE = `n="${SHARE}/node"; [ -x "$n" ] || n=$(command -v node 2>/dev/null) || n=`;

const LAUNCHER = `#!/bin/sh\n${LAUNCHER_MARK}\nn="${SHARE}/node"; [ -x "$n" ] || n=node\nexec "$n" "${SHARE}/bcmr-server.mjs" "$@"\n`;

/** Verifies the received bundle's SHA-256 with the remote's own node (argv: file, hash). */
const VERIFY = `const [f,h]=process.argv.slice(1);if(+process.versions.node.split('.')[0]<20){console.error('the remote node '+process.version+' is older than 20');process.exit(3)}const d=require('crypto').createHash('sha256').update(require('fs').readFileSync(f)).digest('hex');if(d!==h){console.error('the bundle arrived damaged');process.exit(4)}`;

function deployScript(sha256: string): string {
  return `set -e
${PICK_NODE}
[ -n "$n" ] || { echo "the remote has no node on its PATH (Node 20+ is needed; --with-node ships one)" >&2; exit 2; }
d="${SHARE}"; b="$HOME/.local/bin"
mkdir -p "$d" "$b"; chmod 700 "$d"
t="$d/.bcmr-server.mjs.tmp.$$"; trap 'rm -f -- "$t" "$l"' EXIT
l="$b/.bcmr.tmp.$$"
umask 077; cat > "$t"
"$n" -e ${shellQuote(VERIFY)} -- "$t" ${sha256}
mv -f -- "$t" "$d/bcmr-server.mjs"
printf '%s' ${shellQuote(LAUNCHER)} > "$l"; chmod 755 "$l"
if [ -e "$b/bcmr" ] && ! grep -qF ${shellQuote(LAUNCHER_MARK)} "$b/bcmr"; then echo "$b/bcmr exists and is not ours: left alone" >&2; exit 5; fi
mv -f -- "$l" "$b/bcmr"
echo "deployed ${sha256} with node $("$n" --version)"
`;
}

/** Receives the gzipped runtime on stdin; publishes it only when its hash matches and it runs. */
function runtimeScript(sha256: string): string {
  return `set -e
${SHA256_FN}
d="${SHARE}"; mkdir -p "$d"; chmod 700 "$d"
t="$d/.node.tmp.$$"; trap 'rm -f -- "$t"' EXIT
umask 077; gzip -dc > "$t"
h=$(sha256 < "$t")
[ "$h" = ${sha256} ] || { echo "the Node runtime arrived damaged (sha256 $h)" >&2; exit 4; }
chmod 755 "$t"
v=$("$t" --version 2>/dev/null) || { echo "the shipped Node runtime does not run there (another C library?): install Node 20+ on the remote" >&2; exit 6; }
mv -f -- "$t" "$d/node"
echo "node runtime $v installed as $d/node"
`;
}

/** Each line `key: value`; the keys are what --with-node reads back (see RemoteFacts). */
const CHECK_SCRIPT = `${SHA256_FN}
echo "os: $(uname -sm 2>/dev/null)"
p=$(command -v bcmr 2>/dev/null || true); echo "bcmr on PATH: \${p:-none}"
p=$(command -v node 2>/dev/null || true); if [ -n "$p" ]; then echo "node: $p $("$p" --version 2>/dev/null)"; else echo "node: none"; fi
r="${SHARE}/node"; if [ -x "$r" ]; then echo "deployed node: $r $("$r" --version 2>/dev/null)"; else echo "deployed node: none"; fi
f="${SHARE}/bcmr-server.mjs"
if [ -f "$f" ]; then echo "deployed bundle: $f sha256 $(sha256 < "$f")"; else echo "deployed bundle: none"; fi
if [ -x "$HOME/.local/bin/bcmr" ]; then echo "launcher: $HOME/.local/bin/bcmr"; else echo "launcher: none"; fi
echo "tools: gzip $(command -v gzip >/dev/null 2>&1 && echo yes || echo no), sha256 $(if [ "$(: | sha256)" = none ]; then echo no; else echo yes; fi)"
`;

const REMOVE_SCRIPT = `b="$HOME/.local/bin/bcmr"; d="${SHARE}"
if [ -f "$b" ] && grep -qF ${shellQuote(LAUNCHER_MARK)} "$b"; then rm -f -- "$b"; echo "removed $b"; fi
for f in bcmr-server.mjs node; do if [ -f "$d/$f" ]; then rm -f -- "$d/$f"; echo "removed $d/$f"; fi; done
rmdir "$d" 2>/dev/null || true
`;

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

export function parseFacts(checkOutput: string): RemoteFacts {
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
export function localOs(): string {
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
