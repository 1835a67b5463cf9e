/**
 * What the plain-ssh fallback needs to know about a remote shell host, and how it talks to it
 * whatever the account's login shell is.
 *
 * sshd runs a command through the login shell, which may be fish or csh: their quoting differs
 * from sh's (csh cannot hold a newline or a `!` inside single quotes). So every fallback command
 * is sh code that never passes through the login shell as text: `sh -s` reading it from stdin
 * when stdin carries nothing else, or, when stdin must also carry data (a tar stream, a file),
 * a fixed one-line bootstrap that reads exactly the script's bytes first (`dd bs=1`, which
 * never reads past them) and evals it, leaving the data that follows for the script.
 *
 * Flavours are probed once per connection: GNU or BSD `stat` (and tar: GNU, bsdtar, busybox),
 * and which hashers are there.
 */

import type { StatFlavour, TarFlavour } from '../../core/remote_fs.js';

export interface RemoteTools {
  home: string;
  tar: TarFlavour;
  stat: StatFlavour;
  /** `b3sum` is on the PATH: stored copies can be checked against the BLAKE3 we sent. */
  b3sum: boolean;
  /** A bcmr server could start there now: bcmr, the deploy launcher, or a Node 20+. */
  serverMayRun: boolean;
}

/** The one-line command that runs `script` (sent first on stdin) in sh, in any login shell. */
export function bootstrap(script: Buffer): string {
  // No newline, no `!`, nothing but single-quoted text: the same words in sh, bash, zsh, fish, csh.
  return `sh -c 'S=$(dd bs=1 count=${script.length} 2>/dev/null) && eval "$S"'`;
}

/** Prints the home, then one line per probe (tar's, stat's, b3sum's). */
export const PROBE_SCRIPT = `printf '%s\\n' "$HOME"
v=$(tar --version 2>&1 | head -n 1)
case "$v" in *"GNU tar"*) echo tar gnu ;; *bsdtar*) echo tar bsd ;; *BusyBox*) echo tar busybox ;; *) if command -v tar >/dev/null 2>&1; then echo tar bsd; else echo tar none; fi ;; esac
if stat -c %s / >/dev/null 2>&1; then echo stat gnu; else echo stat bsd; fi
if command -v b3sum >/dev/null 2>&1; then echo b3sum yes; else echo b3sum no; fi
if command -v bcmr >/dev/null 2>&1 || [ -x "$HOME/.local/bin/bcmr" ]; then echo server installed
elif command -v node >/dev/null 2>&1; then echo "server node $(node --version 2>/dev/null)"
else echo server none; fi
`;

export function parseProbe(out: string): RemoteTools {
  const lines = out.split('\n');
  const home = lines[0] ?? '';
  const value = (key: string) =>
    lines
      .find((l) => l.startsWith(`${key} `))
      ?.slice(key.length + 1)
      .trim();
  const tar = value('tar');
  return {
    home,
    tar: tar === 'gnu' || tar === 'bsd' || tar === 'busybox' ? tar : 'none',
    stat: value('stat') === 'gnu' ? 'gnu' : 'bsd',
    b3sum: value('b3sum') === 'yes',
    serverMayRun: serverMayRun(value('server') ?? 'none'),
  };
}

/** `stat` arguments printing, per operand and in order: size, mtime, then type. */
export function statFormat(flavour: StatFlavour): string {
  return flavour === 'gnu' ? "-c '%s %Y %F'" : "-f '%z %m %HT'";
}

/**
 * `sha256` prints the SHA-256 hex of its stdin with whichever tool the remote has (GNU
 * coreutils, BSD/macOS shasum, OpenSSL), or `none` when it has none. Used by deploy (checking
 * what it shipped) and by -C on the fallback (checking a partial file's prefix).
 */
export const SHA256_FN = `sha256() { if command -v sha256sum >/dev/null 2>&1; then sha256sum | cut -d' ' -f1; elif command -v shasum >/dev/null 2>&1; then shasum -a 256 | cut -d' ' -f1; elif command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r | cut -d' ' -f1; else echo none; fi; }`;

function serverMayRun(line: string): boolean {
  if (line === 'installed') return true;
  const m = /^node v(\d+)\./.exec(line);
  return m !== null && Number(m[1]) >= 20;
}
