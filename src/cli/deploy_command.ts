/**
 * `bcmr deploy HOST`: installs the server bundle for good on a remote that has Node 20+: the
 * bundle as `~/.local/share/bcmr/bcmr-server.mjs` (0600 in a 0700 dir, SHA-256 verified on
 * the remote) and a `~/.local/bin/bcmr` launcher, each written to a temp name and renamed (so
 * a rerun is idempotent and an interrupted one leaves the old install whole). The copy command
 * finds the launcher even when `~/.local/bin` is not on a non-interactive PATH.
 * `--check` says what the remote has; `--remove` undoes a deploy (only files it wrote).
 */
import type { Command } from 'commander';
import { serverBundle } from '../client/bundle.js';
import { runRemote, type SshConfig } from '../client/ssh.js';
import { hostLabel, parseEndpoint, type RemoteEndpoint } from '../core/endpoint.js';
import { RemoteError, UsageError } from '../errors.js';
import { shellQuote, splitCommand } from '../util/shell.js';

/** First line of the launcher: how --remove knows the file is ours. */
const LAUNCHER_MARK = '# bcmr launcher (bcmr deploy)';

const LAUNCHER = `#!/bin/sh\n${LAUNCHER_MARK}\nexec node "$HOME/.local/share/bcmr/bcmr-server.mjs" "$@"\n`;

/** Verifies the received bundle's SHA-256 with the remote's own node (argv: file, hash). */
const VERIFY = `const [f,h]=process.argv.slice(1);if(+process.versions.node.split('.')[0]<20){console.error('the remote node '+process.version+' is older than 20');process.exit(3)}const d=require('crypto').createHash('sha256').update(require('fs').readFileSync(f)).digest('hex');if(d!==h){console.error('the bundle arrived damaged');process.exit(4)}`;

function deployScript(sha256: string): string {
  return `set -e
command -v node >/dev/null 2>&1 || { echo "the remote has no node on its PATH (Node 20+ is needed)" >&2; exit 2; }
d="$HOME/.local/share/bcmr"; b="$HOME/.local/bin"
mkdir -p "$d" "$b"; chmod 700 "$d"
t="$d/.bcmr-server.mjs.tmp.$$"; trap 'rm -f -- "$t" "$l"' EXIT
l="$b/.bcmr.tmp.$$"
umask 077; cat > "$t"
node -e ${shellQuote(VERIFY)} -- "$t" ${sha256}
mv -f -- "$t" "$d/bcmr-server.mjs"
printf '%s' ${shellQuote(LAUNCHER)} > "$l"; chmod 755 "$l"
if [ -e "$b/bcmr" ] && ! grep -qF ${shellQuote(LAUNCHER_MARK)} "$b/bcmr"; then echo "$b/bcmr exists and is not ours: left alone" >&2; exit 5; fi
mv -f -- "$l" "$b/bcmr"
echo "deployed ${sha256} with node $(node --version)"
`;
}

const CHECK_SCRIPT = `p=$(command -v bcmr 2>/dev/null || true); echo "bcmr on PATH: \${p:-none}"
n=$(command -v node 2>/dev/null || true); if [ -n "$n" ]; then echo "node: $n $(node --version)"; else echo "node: none"; fi
f="$HOME/.local/share/bcmr/bcmr-server.mjs"
if [ -f "$f" ]; then echo "deployed bundle: $f sha256 $(node -e "process.stdout.write(require('crypto').createHash('sha256').update(require('fs').readFileSync(process.argv[1])).digest('hex'))" "$f" 2>/dev/null || echo unknown)"; else echo "deployed bundle: none"; fi
if [ -x "$HOME/.local/bin/bcmr" ]; then echo "launcher: $HOME/.local/bin/bcmr"; else echo "launcher: none"; fi
`;

const REMOVE_SCRIPT = `b="$HOME/.local/bin/bcmr"; d="$HOME/.local/share/bcmr"
if [ -f "$b" ] && grep -qF ${shellQuote(LAUNCHER_MARK)} "$b"; then rm -f -- "$b"; echo "removed $b"; fi
if [ -f "$d/bcmr-server.mjs" ]; then rm -f -- "$d/bcmr-server.mjs"; echo "removed $d/bcmr-server.mjs"; fi
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
    .description('Install the bcmr server on HOST for good (needs Node 20+ there), or --check / --remove')
    .argument('<host>', '[user@]host')
    .option('--check', 'say what the remote has: bcmr, node, a deployed bundle')
    .option('--remove', 'remove what bcmr deploy installed')
    .option('--with-node', 'also install a Node runtime (not available yet)')
    .option('--rsh <cmd>', 'ssh command to use (env BCMR_RSH)')
    .action(async (host: string, opts: DeployOptions) => {
      await deploy(host, opts);
    });
}

async function deploy(host: string, opts: DeployOptions): Promise<void> {
  const target = parseEndpoint(host.includes(':') ? host : `${host}:`);
  if (target.kind !== 'remote') throw new UsageError(`deploy needs a host, not ${host}`);
  if (opts.withNode) throw new UsageError('--with-node is not available yet: install Node 20+ on the remote');
  const rsh = splitCommand(opts.rsh ?? process.env.BCMR_RSH ?? 'ssh');
  const cfg: SshConfig = { rsh };
  const run = async (script: string, input?: Uint8Array) => {
    const r = await runRemote(cfg, target as RemoteEndpoint, `exec sh -c ${shellQuote(script)}`, { input });
    if (r.code !== 0) {
      const why = r.stderr.trim().split('\n').pop() || `exit ${r.code}`;
      throw new RemoteError(`deploy on ${hostLabel(target as RemoteEndpoint)} failed: ${why}`);
    }
    process.stdout.write(r.stdout.toString('utf8'));
  };
  if (opts.check) return run(CHECK_SCRIPT);
  if (opts.remove) return run(REMOVE_SCRIPT);
  const bundle = serverBundle();
  if (!bundle) throw new UsageError('the server bundle is not built (npm run build)');
  await run(deployScript(bundle.sha256), bundle.bytes);
}
