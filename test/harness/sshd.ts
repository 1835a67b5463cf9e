/**
 * A real OpenSSH server for end-to-end tests: `sshd` on 127.0.0.1 at a free port, host and
 * user keys generated in a temp dir, and an ssh_config the client uses through
 * `--rsh "ssh -F <config>"`. Host aliases:
 *   bcmr-test       the server, with a `bcmr` wrapper (this checkout, on Node 24) on its PATH
 *   bcmr-badkey     the same server, but known_hosts holds a different key (host key failure)
 *   bcmr-refused    a closed port (connection refused)
 *   bcmr-bare       the same server on a second port whose sessions have no bcmr on PATH
 *   bcmr-oldnode    a third port: no bcmr, and the first `node` on PATH says it is 18
 *   bcmr-nonode     a fourth port: the usual tools on PATH, but neither bcmr nor node
 *   bcmr-csh, bcmr-fish          ports whose sessions run the command in tcsh / fish, as for
 *   bcmr-csh-bare, bcmr-fish-bare  an account with that login shell (with bcmr on PATH, or as
 *                                bcmr-nonode); only where the shell is installed (`loginShells`)
 *   bcmr-forced     the server through a key whose authorized_keys line forces
 *                   `command="bcmr serve --root <dir>/forced-root"` (a copy-only key)
 * It installs nothing: a missing sshd or ssh-keygen is an error (`.ci/run` installs them).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import '../helpers/isolate.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** bin/bcmr.js of this checkout (tests run from dist/test/harness). */
export const BCMR_BIN = path.resolve(here, '../../../bin/bcmr.js');

const SSHD_CANDIDATES = ['/usr/sbin/sshd', '/usr/local/sbin/sshd', '/sbin/sshd'];
const SFTP_SERVERS = [
  '/usr/lib/openssh/sftp-server',
  '/usr/libexec/openssh/sftp-server',
  '/usr/libexec/sftp-server',
];

export interface SshServer {
  dir: string;
  port: number;
  /** Value for --rsh. */
  rsh: string;
  /** argv to run ssh by hand against the aliases. */
  sshArgv: string[];
  /** Directory holding the `bcmr` wrapper that is on the remote PATH. */
  binDir: string;
  /** Where every remote `bcmr serve` logs its session caps and requests (BCMR_SERVE_LOG). */
  serveLog: string;
  /** The root the `bcmr-forced` key's forced command serves. */
  forcedRoot: string;
  /** $HOME of every session (a temp dir): where `host:` and relative remote paths land. */
  home: string;
  /** Login shells emulated (aliases bcmr-NAME and bcmr-NAME-bare), e.g. ['csh', 'fish']. */
  loginShells: string[];
  /** Adds `Host name` reaching this server through host:port (e.g. a delay proxy). */
  addAlias(name: string, host: string, port: number): void;
  /**
   * Puts a script of the test's in place of `name` on the bcmr-nonode PATH (`nonode-bin`, whose
   * entries are links to the system's tools): the link is removed first and the script created
   * new (O_EXCL, never through a link), so a test can never write into a system tool. Returns
   * the tool's real path (or null) and a function that puts things back.
   */
  replaceTool(name: string, script: string): { real: string | null; restore: () => void };
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface SshdOptions {
  /**
   * false (benchmarks): remote servers neither trace their requests to a file nor poison the
   * read memory they reuse (BCMR_SLAB_POISON, transport/slab_pool.ts: for tests, a view used
   * after its release then corrupts the copy, which the tests' hash checks catch).
   */
  serveLog?: boolean;
  /** Address to listen on (default 127.0.0.1), e.g. inside a network namespace. */
  listen?: string;
  /** Command prefix to start sshd with, e.g. `ip netns exec NS`. */
  wrap?: string[];
  /**
   * Command prefix for the remote `bcmr` (benchmarks: `/usr/bin/time -a -o FILE -f ...` to
   * record each server's peak RSS); shell words, already quoted.
   */
  serveWrap?: string;
}

export async function startSshd(opts: SshdOptions = {}): Promise<SshServer> {
  const listen = opts.listen ?? '127.0.0.1';
  const sshd = SSHD_CANDIDATES.find((p) => existsSync(p));
  if (!sshd) throw new Error('sshd not found (install openssh-server; .ci/run does)');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bcmr-sshd-'));
  const keygen = (file: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
  keygen(path.join(dir, 'host_key'));
  keygen(path.join(dir, 'other_host_key'));
  keygen(path.join(dir, 'user_key'));
  keygen(path.join(dir, 'forced_key'));
  // The remote `bcmr`: this checkout on the Node that runs the tests (the system one may be older).
  const binDir = path.join(dir, 'bin');
  const forcedRoot = path.join(dir, 'forced-root');
  mkdirSync(forcedRoot);
  const remoteHome = path.join(dir, 'home');
  mkdirSync(remoteHome);
  writeFileSync(
    path.join(dir, 'authorized_keys'),
    `${readFileSync(path.join(dir, 'user_key.pub'), 'utf8').trim()}\n` +
      `command="${path.join(binDir, 'bcmr')} serve --root ${forcedRoot}",no-pty ${readFileSync(path.join(dir, 'forced_key.pub'), 'utf8').trim()}\n`,
  );
  mkdirSync(binDir);
  writeFileSync(
    path.join(binDir, 'bcmr'),
    `#!/bin/sh\nexec ${opts.serveWrap ? `${opts.serveWrap} ` : ''}'${process.execPath}' '${BCMR_BIN}' "$@"\n`,
    {
      mode: 0o755,
    },
  );
  // Privilege separation needs this directory when sshd runs as root (normally made by the service).
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  const port = await freePort();
  // A second port whose sessions have no bcmr on their PATH (a host that never had it).
  const barePort = await freePort();
  // A third port whose PATH has only a Node that says it is 18 (too old for the bundle).
  const oldNodePort = await freePort();
  const oldNodeBin = path.join(dir, 'oldnode-bin');
  mkdirSync(oldNodeBin);
  writeFileSync(
    path.join(dir, 'fake18.cjs'),
    "Object.defineProperty(process.versions, 'node', { value: '18.20.0' });\nObject.defineProperty(process, 'version', { value: 'v18.20.0' });\n",
  );
  writeFileSync(
    path.join(oldNodeBin, 'node'),
    `#!/bin/sh\nexec '${process.execPath}' --require '${path.join(dir, 'fake18.cjs')}' "$@"\n`,
    { mode: 0o755 },
  );
  // A fourth port whose PATH has every tool of the system but node (a host with only a shell).
  const noNodePort = await freePort();
  const noNodeBin = path.join(dir, 'nonode-bin');
  // b3sum too: whether the machine has one must not change what a test sees (tests that need one
  // put their own in with replaceTool).
  toolsWithout(noNodeBin, new Set(['node', 'nodejs', 'bcmr', 'b3sum']));
  // Accounts whose login shell is not sh: sshd's ForceCommand hands the command to that shell
  // exactly as a login shell would get it (`SHELL -c COMMAND`).
  const shells: { name: string; shell: string; port: number; barePort: number }[] = [];
  for (const [name, candidates] of LOGIN_SHELLS) {
    const shell = candidates.find((c) => existsSync(c));
    if (shell) shells.push({ name, shell, port: await freePort(), barePort: await freePort() });
  }
  const user = os.userInfo().username;
  const poison = opts.serveLog === false ? '' : ' BCMR_SLAB_POISON=1';
  const testOnly = opts.serveLog === false ? '' : ` BCMR_SERVE_LOG=${path.join(dir, 'serve.log')}${poison}`;
  writeFileSync(
    path.join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      `Port ${barePort}`,
      `Port ${oldNodePort}`,
      `Port ${noNodePort}`,
      ...shells.flatMap((sh) => [`Port ${sh.port}`, `Port ${sh.barePort}`]),
      `ListenAddress ${listen}`,
      `HostKey ${path.join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin yes',
      'StrictModes no',
      'UsePAM no',
      'MaxStartups 100:30:200',
      'MaxSessions 100',
      // scp in OpenSSH 9 speaks SFTP underneath (the benchmark compares against it): the
      // distribution's sftp-server, as the stock sshd_config runs it, else the built-in one.
      `Subsystem sftp ${SFTP_SERVERS.find((p) => existsSync(p)) ?? 'internal-sftp'}`,
      // HOME: a temp dir of the harness, so `host:` and relative remote paths never touch the
      // real home of the account running the tests.
      `SetEnv HOME=${remoteHome} PATH=${binDir}:/usr/local/bin:/usr/bin:/bin BCMR_CAS_DIR=${path.join(dir, 'cas')}${testOnly}`,
      `Match LocalPort ${barePort}`,
      `  SetEnv HOME=${remoteHome} PATH=/usr/local/bin:/usr/bin:/bin`,
      `Match LocalPort ${oldNodePort}`,
      `  SetEnv HOME=${remoteHome} PATH=${oldNodeBin}:/usr/local/bin:/usr/bin:/bin`,
      `Match LocalPort ${noNodePort}`,
      `  SetEnv HOME=${remoteHome} PATH=${noNodeBin}`,
      ...shells.flatMap((sh) => [
        `Match LocalPort ${sh.port}`,
        `  SetEnv HOME=${remoteHome} PATH=${binDir}:/usr/local/bin:/usr/bin:/bin BCMR_CAS_DIR=${path.join(dir, 'cas')}${poison}`,
        `  ForceCommand exec ${sh.shell} -c "$SSH_ORIGINAL_COMMAND"`,
        `Match LocalPort ${sh.barePort}`,
        `  SetEnv HOME=${remoteHome} PATH=${noNodeBin}`,
        `  ForceCommand exec ${sh.shell} -c "$SSH_ORIGINAL_COMMAND"`,
      ]),
      '',
    ].join('\n'),
  );
  const hostPub = readFileSync(path.join(dir, 'host_key.pub'), 'utf8')
    .trim()
    .split(' ')
    .slice(0, 2)
    .join(' ');
  const otherPub = readFileSync(path.join(dir, 'other_host_key.pub'), 'utf8')
    .trim()
    .split(' ')
    .slice(0, 2)
    .join(' ');
  // The key is filed under an alias, so other routes to the same server (a delay proxy) match it.
  writeFileSync(path.join(dir, 'known_hosts'), `bcmr-test-key ${hostPub}\n`);
  const common = [
    `  User ${user}`,
    `  IdentityFile ${path.join(dir, 'user_key')}`,
    '  IdentitiesOnly yes',
    '  StrictHostKeyChecking yes',
    '  LogLevel ERROR',
  ];
  const refusedPort = await freePort();
  /** One `Host` block reaching this server (its key filed under bcmr-test-key) at host:port. */
  const hostBlock = (alias: string, host: string, p: number, key = 'user_key'): string[] => [
    `Host ${alias}`,
    `  HostName ${host}`,
    `  Port ${p}`,
    '  HostKeyAlias bcmr-test-key',
    `  UserKnownHostsFile ${path.join(dir, 'known_hosts')}`,
    ...common.map((l) => l.replace(path.join(dir, 'user_key'), path.join(dir, key))),
  ];
  writeFileSync(
    path.join(dir, 'ssh_config'),
    [
      ...hostBlock('bcmr-test', listen, port),
      'Host bcmr-badkey',
      `  HostName ${listen}`,
      `  Port ${port}`,
      '  HostKeyAlias bcmr-badkey-alias',
      `  UserKnownHostsFile ${path.join(dir, 'bad_known_hosts')}`,
      ...common,
      ...hostBlock('bcmr-bare', listen, barePort),
      ...hostBlock('bcmr-oldnode', listen, oldNodePort),
      ...hostBlock('bcmr-nonode', listen, noNodePort),
      ...shells.flatMap((sh) => [
        ...hostBlock(`bcmr-${sh.name}`, listen, sh.port),
        ...hostBlock(`bcmr-${sh.name}-bare`, listen, sh.barePort),
      ]),
      ...hostBlock('bcmr-forced', listen, port, 'forced_key'),
      'Host bcmr-refused',
      '  HostName 127.0.0.1',
      `  Port ${refusedPort}`,
      `  UserKnownHostsFile ${path.join(dir, 'known_hosts')}`,
      ...common,
      '',
    ].join('\n'),
  );
  // HostKeyAlias makes ssh look the key up under this name: give it the wrong key.
  writeFileSync(path.join(dir, 'bad_known_hosts'), `bcmr-badkey-alias ${otherPub}\n`);

  const wrap = opts.wrap ?? [];
  const argv = [...wrap, sshd, '-D', '-e', '-f', path.join(dir, 'sshd_config')];
  const child = spawn(argv[0], argv.slice(1), {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await waitListening(child, listen, port);
  const config = path.join(dir, 'ssh_config');
  return {
    dir,
    port,
    rsh: `ssh -F ${config}`,
    sshArgv: ['ssh', '-F', config],
    binDir,
    serveLog: path.join(dir, 'serve.log'),
    forcedRoot,
    home: remoteHome,
    loginShells: shells.map((sh) => sh.name),
    addAlias(name: string, host: string, aliasPort: number) {
      appendFileSync(config, `${hostBlock(name, host, aliasPort).join('\n')}\n`);
    },
    replaceTool(name: string, script: string) {
      if (name.includes('/')) throw new Error(`replaceTool: ${name} is not a tool name`);
      const file = path.join(noNodeBin, name);
      const st = lstatSync(file, { throwIfNoEntry: false });
      if (st && !st.isSymbolicLink()) throw new Error(`replaceTool: ${file} is already replaced`);
      const real = st ? readlinkSync(file) : null;
      if (st) unlinkSync(file);
      writeFileSync(file, script, { mode: 0o755, flag: 'wx' });
      return {
        real,
        restore: () => {
          unlinkSync(file);
          if (real) symlinkSync(real, file);
        },
      };
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('close', r)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitListening(child: ChildProcess, host: string, port: number): Promise<void> {
  let log = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    log = (log + s).slice(-4000);
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${log}`);
    // Its own word counts too: inside another network namespace we cannot connect from here.
    if (log.includes(`Server listening on ${host} port ${port}`)) return;
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, host);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill();
  throw new Error(`sshd did not start listening: ${log}`);
}

/** Non-sh login shells the harness emulates where installed (`.ci/run` installs them). */
const LOGIN_SHELLS: [string, string[]][] = [
  ['csh', ['/usr/bin/tcsh', '/bin/tcsh', '/usr/bin/csh', '/bin/csh']],
  ['fish', ['/usr/bin/fish', '/usr/local/bin/fish']],
];

/** Fills `bin` with links to every command of the system's PATH directories except `without`. */
function toolsWithout(bin: string, without: ReadonlySet<string>): void {
  mkdirSync(bin);
  for (const d of ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names) {
      if (without.has(n) || existsSync(path.join(bin, n))) continue;
      try {
        symlinkSync(path.join(d, n), path.join(bin, n));
      } catch {
        // a name seen twice through a linked directory
      }
    }
  }
}
