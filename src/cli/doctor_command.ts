/**
 * `bcmr doctor HOST`: one screen on how bcmr reaches a host. ssh (reachable, handshake time),
 * the server it gets (installed, the bundle on the host's Node, or the plain-ssh fallback and
 * why), the capabilities granted, the round trip and what -P auto / --direct auto choose for a
 * big copy (the direct port tried), free space in the home, clock skew, and the tools the
 * fallback would use. Each check says what it found or why it could not; exit 1 when the host
 * cannot be reached at all.
 */
import type { Command } from 'commander';
import { openRemote } from '../client/pool/open_remote.js';
import { runRemote } from '../client/ssh/run_remote.js';
import { parseEndpoint } from '../core/endpoint.js';
import type { RemoteFs } from '../core/remote_fs.js';
import { describeError, ExitCode, UsageError } from '../errors.js';
import { Cap } from '../protocol/constants.js';
import { sh } from '../util/shell.js';
import { formatBytes } from './format.js';
import { type RemoteRaw, remoteOptions, withRemoteOptions } from './remote_options.js';

type Finding = { check: string; ok: boolean; found: string };

export function addDoctorCommand(program: Command, setExit: (code: number) => void): void {
  const c = program
    .command('doctor')
    .description(
      'Check how bcmr reaches HOST: ssh, the server it gets, caps, round trip, -P auto, space, clock',
    )
    .argument('<host>', '[user@]host');
  withRemoteOptions(c).action(async (host: string, raw: RemoteRaw, cmd: Command) => {
    setExit(await doctor(host, raw, Boolean(cmd.optsWithGlobals().json)));
  });
}

async function doctor(hostArg: string, raw: RemoteRaw, json: boolean): Promise<number> {
  const end = parseEndpoint(hostArg.includes(':') ? hostArg : `${hostArg}:`);
  if (end.kind !== 'remote') throw new UsageError(`'${hostArg}' is not a host`);
  const base = remoteOptions(raw);
  const findings: Finding[] = [];
  const say = (check: string, ok: boolean, found: string) => {
    findings.push({ check, ok, found });
    if (!json) process.stdout.write(`${ok ? 'ok ' : '-- '} ${check.padEnd(12)} ${found}\n`);
  };

  const t0 = performance.now();
  const probe = await runRemote(base.ssh, end, 'date +%s', {
    extra: ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10'],
  }).catch((err: Error) => ({ code: 255, stdout: Buffer.alloc(0), stderr: err.message }));
  const sshMs = performance.now() - t0;
  if (probe.code !== 0) {
    say(
      'ssh',
      false,
      `cannot run a command: ${probe.stderr.trim().split('\n').pop() ?? `exit ${probe.code}`}`,
    );
    if (json) process.stdout.write(`${JSON.stringify({ event: 'doctor', host: hostArg, findings })}\n`);
    return ExitCode.failed;
  }
  say('ssh', true, `a command runs; connect + login + command took ${Math.round(sshMs)} ms`);
  const remoteNow = Number(probe.stdout.toString().trim());
  const localNow = (Date.now() - sshMs / 2) / 1000;
  if (Number.isFinite(remoteNow)) {
    const skew = Math.round(remoteNow - localNow);
    say(
      'clock',
      Math.abs(skew) <= 2,
      skew === 0
        ? 'in step (to the second)'
        : `${skew > 0 ? '+' : ''}${skew} s from here (mtimes compare across hosts)`,
    );
  }

  const notices: string[] = [];
  let remote: RemoteFs | null = null;
  try {
    remote = await openRemote(end, { ...base, parallel: 'auto', direct: 'auto' }, (m) => notices.push(m));
    const why = notices.find((n) => /plain ssh/.test(n));
    const server =
      remote.server === 'installed'
        ? 'bcmr installed on the host'
        : remote.server === 'bundle'
          ? `the zero-install bundle on the host's Node ${remote.remoteNode ?? ''}`.trim()
          : remote.server === 'custom'
            ? 'the server --remote-path starts'
            : `none: the plain-ssh fallback${why ? ` (${why.replace(/;.*$/, '')})` : ''}`;
    say('server', remote.server !== 'fallback', server);
    const caps = (remote as { caps?: number }).caps;
    if (caps !== undefined)
      say(
        'caps',
        true,
        (Object.keys(Cap) as (keyof typeof Cap)[]).filter((k) => (caps & Cap[k]) !== 0).join(' ') || 'none',
      );
    if (remote.prepare) {
      const big = 1 << 30;
      const choice = await remote.prepare({ bytes: big, files: 1, largest: big });
      if (choice) {
        say('round trip', true, `${choice.rttMs.toFixed(2)} ms`);
        say(
          '-P auto',
          true,
          `for 1 GiB: ${choice.connections} connection(s) over ${choice.plane}: ${choice.why}`,
        );
      }
      if (remote.directUnavailable) say('direct port', false, remote.directUnavailable);
      else if (choice?.plane === 'direct') say('direct port', true, 'reachable (AES-256-GCM data plane)');
    }
    // What the fallback would use there (its own probe when the host has a server).
    let tools = remote.shellTools;
    if (!tools) {
      const { PlainSsh } = await import('../client/fallback/plain_ssh.js');
      const plain = await PlainSsh.open(base.ssh, end, { sync: false, fast: false }).catch(() => null);
      tools = plain?.shellTools;
      await plain?.close();
    }
    if (tools)
      say(
        'fallback',
        true,
        `would use tar ${tools.tar}, stat ${tools.stat}; uploads checked by ${tools.verify}`,
      );
    const df = await remote.script(sh`df -Pk . 2>/dev/null | tail -1\n`).catch(() => '');
    const avail = Number(df.trim().split(/\s+/)[3]);
    if (Number.isFinite(avail))
      say('free space', avail > 1 << 20, `${formatBytes(avail * 1024)} free in ${remote.home || 'the home'}`);
  } catch (err) {
    say('server', false, describeError(err));
  } finally {
    await remote?.close();
  }
  if (json) process.stdout.write(`${JSON.stringify({ event: 'doctor', host: hostArg, findings })}\n`);
  return ExitCode.ok;
}
