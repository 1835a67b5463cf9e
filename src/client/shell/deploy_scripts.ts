/**
 * The sh that `bcmr deploy` runs on a remote (cli/deploy_command.ts runs them): install the
 * bundle and launcher, install a shipped Node runtime, report what is there, remove what
 * deploy wrote. Each is sent on stdin (remote_shell.ts's bootstrap when data follows), so the
 * login shell never parses it; the only values in them are hashes and fixed names.
 */
import { shellQuote } from '../../util/shell.js';
import { SHA256_FN } from './remote_shell.js';

/** First line of the launcher: how --remove knows the file is ours. */
const LAUNCHER_MARK = '# bcmr launcher (bcmr deploy)';

/** Where deploy puts its files on the remote (shell text, expanded there). */
const SHARE = '$HOME/.local/share/bcmr';

/** Sets `n` to the Node to run: the runtime deploy shipped, else the PATH's, else empty. */
const PICK_NODE = `n="${SHARE}/node"; [ -x "$n" ] || n=$(command -v node 2>/dev/null) || n=`;

const LAUNCHER = `#!/bin/sh\n${LAUNCHER_MARK}\nn="${SHARE}/node"; [ -x "$n" ] || n=node\nexec "$n" "${SHARE}/bcmr-server.mjs" "$@"\n`;

/** Verifies the received bundle's SHA-256 with the remote's own node (argv: file, hash). */
const VERIFY = `const [f,h]=process.argv.slice(1);if(+process.versions.node.split('.')[0]<20){console.error('the remote node '+process.version+' is older than 20');process.exit(3)}const d=require('crypto').createHash('sha256').update(require('fs').readFileSync(f)).digest('hex');if(d!==h){console.error('the bundle arrived damaged');process.exit(4)}`;

/**
 * The one value these scripts carry: a SHA-256 we computed. Checked as 64 hex digits, so
 * nothing else can ever be spliced into the script's text.
 */
function digest(sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`not a SHA-256 digest: ${JSON.stringify(sha256)}`);
  return sha256;
}

export function deployScript(hash: string): string {
  const sha256 = digest(hash);
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
export function runtimeScript(hash: string): string {
  const sha256 = digest(hash);
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
export const CHECK_SCRIPT = `${SHA256_FN}
echo "os: $(uname -sm 2>/dev/null)"
p=$(command -v bcmr 2>/dev/null || true); echo "bcmr on PATH: \${p:-none}"
p=$(command -v node 2>/dev/null || true); if [ -n "$p" ]; then echo "node: $p $("$p" --version 2>/dev/null)"; else echo "node: none"; fi
r="${SHARE}/node"; if [ -x "$r" ]; then echo "deployed node: $r $("$r" --version 2>/dev/null)"; else echo "deployed node: none"; fi
f="${SHARE}/bcmr-server.mjs"
if [ -f "$f" ]; then echo "deployed bundle: $f sha256 $(sha256 < "$f")"; else echo "deployed bundle: none"; fi
if [ -x "$HOME/.local/bin/bcmr" ]; then echo "launcher: $HOME/.local/bin/bcmr"; else echo "launcher: none"; fi
echo "tools: gzip $(command -v gzip >/dev/null 2>&1 && echo yes || echo no), sha256 $(if [ "$(: | sha256)" = none ]; then echo no; else echo yes; fi)"
`;

export const REMOVE_SCRIPT = `b="$HOME/.local/bin/bcmr"; d="${SHARE}"
if [ -f "$b" ] && grep -qF ${shellQuote(LAUNCHER_MARK)} "$b"; then rm -f -- "$b"; echo "removed $b"; fi
for f in bcmr-server.mjs node; do if [ -f "$d/$f" ]; then rm -f -- "$d/$f"; echo "removed $d/$f"; fi; done
rmdir "$d" 2>/dev/null || true
`;
