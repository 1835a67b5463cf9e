/**
 * Starting one `bcmr serve` session over the system OpenSSH client (we never speak SSH
 * ourselves, so the user's ssh_config, agent, ProxyJump and known_hosts all apply): the home
 * line, which server runs (installed, the bundle sent on demand, --remote-path's), then the
 * protocol's handshake.
 */
import { spawn } from 'node:child_process';
import type { RemoteEndpoint } from '../../core/endpoint.js';
import { DowngradeError, NoRemoteBcmrError, SshError, TimeoutError } from '../../errors.js';
import { encodeFrame } from '../../protocol/codec.js';
import { PROTOCOL_VERSION } from '../../protocol/constants.js';
import { type ByteChannel, childChannel } from '../../transport/channel.js';
import { serverBundle } from '../ssh/bundle.js';
import {
  exitOf,
  HOME_TAG,
  SERVER_TAG,
  type SshConfig,
  serveCommand,
  serveOptions,
  sshArgv,
  takePrestarted,
} from '../ssh/ssh_start.js';
import { type ConnectOptions, DEFAULT_CLIENT_CAPS, ServeClient } from './serve_client.js';

/** Which server answered: an installed bcmr, the shipped bundle, or `--remote-path`'s. */
export type ServerKind = 'installed' | 'bundle' | 'custom';

export interface ServeConnection {
  client: ServeClient;
  /**
   * Where relative paths start: the remote home from our command's first line, or '' when the
   * key forces its own command (`command="bcmr serve --root DIR"` in authorized_keys): then no
   * home line comes, and paths are sent relative to that server's root as they are.
   */
  home: string;
  server: ServerKind;
  /** The remote Node running the bundle (`server: 'bundle'`). */
  nodeVersion?: string;
  /** Whether the bundle had to be sent (not yet cached on the remote). */
  bundleSent?: boolean;
}

/**
 * Starts `bcmr serve` over ssh and completes the handshake. Hello is sent at once, not after
 * the home line: a forced command never prints one, and its server waits for Hello. Throws
 * SshError when ssh itself failed (nothing came back), NoRemoteBcmrError when the shell ran
 * but no server answered, TimeoutError when nothing came within the idle timeout.
 */
export async function connectServe(
  cfg: SshConfig,
  target: RemoteEndpoint,
  opts: ConnectOptions & { shared?: boolean } = {},
): Promise<ServeConnection> {
  const bundle = cfg.remotePath === undefined ? serverBundle() : null;
  const { file, args } = sshArgv(
    cfg,
    target,
    serveCommand(cfg.remotePath, bundle),
    serveOptions(cfg, opts.shared === true),
  );
  const early = takePrestarted(file, args);
  const child = early?.child ?? spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let spawnError: Error | null = early?.spawnError ?? null;
  child.once('error', (e) => {
    spawnError = e;
  });
  const base = childChannel(child);
  const exitCode = early?.exited ?? exitOf(child);
  const start: StartLines = {
    home: null,
    sawOutput: false,
    server: cfg.remotePath === undefined ? null : 'custom',
    why: null,
    // The remote needs the bundle: send it, then Hello again once it runs (bundle.ts).
    onNeed: () => {
      if (bundle) base.writable.write(bundle.bytes);
    },
    onBundleRunning: () => {
      base.writable.write(
        encodeFrame({ type: 'Hello', version: PROTOCOL_VERSION, caps: opts.caps ?? DEFAULT_CLIENT_CAPS }),
      );
    },
  };
  const channel: ByteChannel = { ...base, readable: afterHomeLine(base.readable, start) };
  try {
    const { shared: _shared, ...connectOpts } = opts;
    const client = await ServeClient.connect(channel, {
      idleMs: cfg.idleMs,
      bwlimit: cfg.bwlimit,
      ...connectOpts,
    });
    return {
      client,
      home: start.home ?? '',
      server: start.server ?? 'custom',
      ...(start.nodeVersion ? { nodeVersion: start.nodeVersion, bundleSent: start.bundleSent } : {}),
    };
  } catch (err) {
    if (spawnError) throw new SshError(`cannot run ${file}: ${(spawnError as Error).message}`);
    if (err instanceof TimeoutError || err instanceof DowngradeError) throw err;
    // A session that ended before Hello could be written (started early, it was over before
    // we got to it) may still have said why in output not read yet: read it first.
    if (!start.sawOutput) await readWhatIsLeft(channel.readable, 2000);
    if (!start.sawOutput) {
      await exitCode;
      throw new SshError(sshFailure(base.diagnostics(), target));
    }
    // The shell ran (we have its home line), so what failed is the remote bcmr: missing
    // (exit 127), not executable, crashed, or a protocol it does not share with us.
    const code = await Promise.race([
      exitCode,
      new Promise<null>((r) => setTimeout(() => r(null), 2000).unref()),
    ]);
    // 255 is ssh's own failure (the connection was lost after the shell started), not the
    // remote command's: a flaky network, not a host without bcmr (which would mean the fallback).
    if (code === 255) throw new SshError(sshFailure(base.diagnostics(), target), { cause: err });
    const why = start.why ?? base.diagnostics().split('\n').filter(Boolean).pop() ?? (err as Error).message;
    throw new NoRemoteBcmrError(
      `no usable bcmr on ${target.host} (${cfg.remotePath ?? 'bcmr'}: ${why || `exit ${code}`})`,
      { cause: err },
    );
  }
}

/** Reads `source` to its end (recording the start lines), for at most `ms`; never throws. */
async function readWhatIsLeft(source: AsyncIterable<Uint8Array>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const drain = (async () => {
    for await (const _ of source) {
      // Only the start lines matter (afterHomeLine records them); frames are dropped.
    }
  })().catch(() => {});
  await Promise.race([drain, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

function sshFailure(stderr: string, target: RemoteEndpoint): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const line =
    lines.findLast((l) => !l.startsWith('Warning: Permanently added')) ??
    'ssh exited before the session started';
  return `ssh to ${target.host} failed: ${line}`;
}

/** First bytes of a Welcome frame (length 3, type 0x81): a server speaking without a home line. */
const WELCOME_HEAD = Buffer.from([0x03, 0x00, 0x00, 0x00, 0x81]);

interface StartLines {
  home: string | null;
  sawOutput: boolean;
  server: ServerKind | null;
  nodeVersion?: string;
  bundleSent?: boolean;
  /** Why no server runs, from the remote's own line. */
  why: string | null;
  onNeed(): void;
  onBundleRunning(): void;
}

/**
 * The session's bytes with our command's lines taken off the front (recorded in `start`): the
 * home line, then which server runs (bundle.ts's exchange included), or untouched when they
 * begin with a frame (a forced-command server).
 */
async function* afterHomeLine(
  source: AsyncIterable<Uint8Array>,
  start: StartLines,
): AsyncGenerator<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  let acc = Buffer.alloc(0);
  let inLines = true;
  while (inLines) {
    const { value, done } = await it.next();
    if (done) return;
    start.sawOutput = true;
    acc = Buffer.concat([acc, value]);
    if (start.home === null) {
      const head = acc.subarray(0, Math.min(acc.length, WELCOME_HEAD.length));
      if (head.equals(WELCOME_HEAD.subarray(0, head.length))) {
        if (head.length < WELCOME_HEAD.length) continue;
        break;
      }
    }
    for (let nl = acc.indexOf(10); nl >= 0 && inLines; nl = acc.indexOf(10)) {
      const line = acc.subarray(0, nl).toString('utf8');
      acc = acc.subarray(nl + 1);
      if (start.home === null) {
        const at = line.lastIndexOf(HOME_TAG);
        if (at < 0) throw new Error(`unexpected output before the session: ${line.slice(0, 200)}`);
        start.home = line.slice(at + HOME_TAG.length);
        // With --remote-path the server's frames follow the home line directly.
        if (start.server === 'custom') inLines = false;
      } else if (line === 'bcmr-bundle:need') {
        start.onNeed();
      } else if (line.startsWith(SERVER_TAG)) {
        const [what, version, sent] = line.slice(SERVER_TAG.length).split(' ');
        if (what === 'installed') start.server = 'installed';
        else if (what === 'bundle') {
          start.server = 'bundle';
          start.nodeVersion = version;
          start.bundleSent = sent === 'sent';
          if (start.bundleSent) start.onBundleRunning();
        } else {
          start.why =
            what === 'old-node'
              ? `the remote node ${version} is older than 20`
              : what === 'bad-bundle'
                ? 'the server bundle arrived damaged'
                : 'neither bcmr nor node 20+ on the remote PATH';
          return;
        }
        inLines = false;
      } else throw new Error(`unexpected output before the session: ${line.slice(0, 200)}`);
    }
    if (acc.length > 64 * 1024) throw new Error('no home line from the remote shell');
  }
  if (acc.length > 0) yield acc;
  for (;;) {
    const { value, done } = await it.next();
    if (done) return;
    yield value;
  }
}
