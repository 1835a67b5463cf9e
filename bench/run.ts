/**
 * `npm run bench`: bcmr against scp, rsync, rclone (sftp), tar|ssh and the `ssh cat` ceiling,
 * on the same data in the same run, through the test harness's real sshd:
 *   loopback   1 GiB random file (bcmr -P 1/2/4, striped, over ssh and --direct=direct) and
 *              10,000 x 64 KiB files (bcmr -P 1/2/4/8), up and down; AES-GCM and TCP ceilings
 *   latency    10,000 x 64 KiB through a userspace delay proxy (default 50 ms RTT)
 *   slow       64 MiB of real text over a 10 MB/s link (network namespaces + tc tbf, root only)
 *   servers    1 GiB and 10,000 x 64 KiB with an installed bcmr, the zero-install bundle on the
 *              remote's Node, and the plain-ssh fallback on the remote
 *   fallback   2,000 x 64 KiB and 1 GiB through the fallback against tar|ssh|tar, scp, rsync
 *   wan        1 GiB and 10,000 x 64 KiB both ways over emulated long fat pipes (bench/wan_link.ts:
 *              every packet, ssh's and the direct plane's, delayed and rate-limited between two
 *              network namespaces): scp, rsync, rclone, tar|ssh, bcmr -P 1/2/4/8, --direct=direct
 *              -P 1/2/4, -P auto --direct auto, and raw TCP over 1 and 4 streams as the ceiling
 *   fanout     1 GiB to three hosts: `bcmr copy --to` x3 against three bcmr copies and three scp
 *              in turn, on loopback and over the first WAN path (bench/fan_out.ts)
 *   resync     re-runs, `bcmr sync` against `rsync -a` (bench/resync.ts): 10,000 x 64 KiB
 *              unchanged up and down, 100 of them edited; 1 GiB with 16 scattered 4 KiB edits,
 *              on loopback (bytes on the wire counted) and over the first WAN path
 * Every cell also counts whole-machine CPU seconds (/proc/stat busy jiffies before and after).
 * Every run is checked (BLAKE3 of the copy against the source) and a wrong copy is a failure,
 * not a time. Median and spread of `--reps` runs (default 3), tools interleaved, page cache
 * warmed. Writes bench/results/<date>-<host>.{json,md} and two SVG charts.
 *
 * Options: --quick (about 2 minutes: smaller data, fewer tools, 1 run), --reps N, --rtt MS,
 * --conditions loopback,latency,slow,features,servers,fallback,wan,resync, --only-tools NAME,... (substring match),
 * --datasets big,small,text, --wan RTT/MBIT,... (default 50/1000,100/200).
 * Scratch: BCMR_BENCH_DIR (default /dev/shm/bcmr-bench when /dev/shm exists: the disk is not
 * what is measured).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type SshServer, startSshd } from '../test/harness/sshd.js';
import { ceilings } from './ceilings.js';
import { startCountingProxy } from './count_proxy.js';
import { type Dataset, digestOf, randomFile, smallTree, textFile, warm } from './datasets.js';
import { startDelayProxy } from './delay_proxy.js';
import { fanOutCondition } from './fan_out.js';
import { dedupRepeat, resumeAfterKill, syncCost } from './features.js';
import { type Measurement, type ReportInfo, writeReport } from './report.js';
import { resyncCondition } from './resync.js';
import { setupSlowLink, slowLinkUnavailable } from './slow_link.js';
import { bcmr, type Job, type Route, rclone, rsync, scp, sshCat, type Tool, tarSsh } from './tools.js';
import { rawTcp, setupWan, startTcpReceivers, wanUnavailable } from './wan_link.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes('--quick');
const reps = Number(opt('--reps') ?? (quick ? 1 : 3));
const rtt = Number(opt('--rtt') ?? 50);
const ALL_CONDITIONS = 'loopback,latency,slow,features,servers,fallback,wan,resync,fanout';
const conditions = (opt('--conditions') ?? ALL_CONDITIONS).split(',');
/** `--wan 50/1000,100/200`: the emulated paths, RTT ms / Mbit/s each way. */
const wanPaths = (opt('--wan') ?? '50/1000,100/200').split(',').map((p) => p.split('/').map(Number));
const onlyTools = opt('--only-tools')?.split(',');
/** `--datasets big,small,text`: which datasets to run (default all). */
const datasets = (opt('--datasets') ?? 'big,small,text').split(',');
const BASE =
  process.env.BCMR_BENCH_DIR ?? (existsSync('/dev/shm') ? '/dev/shm/bcmr-bench' : '/var/tmp/bcmr-bench');
const CACHE = path.join(BASE, 'cache');

const notes: string[] = [];
/**
 * Saves what is measured so far after each workload (BASE/checkpoint.json): a run cut short
 * still renders with `--from-json` (its label says partial).
 */
let checkpoint: () => void = () => {};

/**
 * Peak RSS of the bcmr processes: GNU time around the client and (through the harness's `bcmr`
 * wrapper) around each remote server, appending `client KiB` / `server KiB` lines here.
 */
const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
const RSS_LOG = path.join(BASE, 'rss.log');

/** Largest `client` and `server` peak RSS (MB) recorded since the log was last cleared. */
function peakRss(): { client: number | null; server: number | null } {
  let text = '';
  try {
    text = readFileSync(RSS_LOG, 'utf8');
  } catch {
    return { client: null, server: null };
  }
  const max = (role: string) => {
    const v = [...text.matchAll(new RegExp(`^${role} (\\d+)$`, 'gm'))].map((m) => Number(m[1]) / 1024);
    return v.length ? Math.max(...v) : null;
  };
  return { client: max('client'), server: max('server') };
}
/** Single figures of the dedup / resume / --sync runs. */
const features: Record<string, string> = {};

function available(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Installs missing peers through apt when root (as the issue allows); otherwise they are skipped. */
function ensurePeers(): void {
  const missing = ['rsync', 'rclone'].filter((c) => !available(c));
  if (missing.length === 0) return;
  if (process.getuid?.() === 0 && available('apt-get')) {
    try {
      execFileSync(
        'sh',
        [
          '-c',
          `apt-get install -y ${missing.join(' ')} || (apt-get update && apt-get install -y ${missing.join(' ')})`,
        ],
        { stdio: 'ignore' },
      );
    } catch {
      // Reported below as skipped.
    }
  }
  for (const c of missing)
    if (!available(c)) notes.push(`${c} is not installed and could not be installed: its column is skipped.`);
}

function usable(t: Tool): boolean {
  if (onlyTools && !onlyTools.some((o) => t.name.includes(o))) return false;
  const cmd = t.name.split(' ')[0];
  return cmd === 'bcmr' || cmd === 'tar' || cmd === 'ssh' || t.copies === false || available(cmd);
}

let bigData: Dataset | null = null;

/**
 * Busy CPU seconds of the whole machine so far (every process: client, ssh, sshd, the remote
 * server, the kernel), from /proc/stat's first line; null where there is none.
 */
function machineCpuSeconds(): number | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: idle and iowait are not work, and steal
    // is the hypervisor running another guest while this one waited (a shared host's noise).
    const busy = f[0] + f[1] + f[2] + f[5] + f[6];
    return busy / 100; // USER_HZ is 100 on every Linux build that matters
  } catch {
    return null;
  }
}

async function timed(argv: string[], prefix: string[]): Promise<{ wall: number; cpu: number | null }> {
  const full = [...prefix, ...argv];
  const cpu0 = machineCpuSeconds();
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const c = spawn(full[0], full.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (b: Buffer) => {
      err = (err + b.toString()).slice(-2000);
    });
    c.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`exit ${code}: ${err.trim().split('\n').pop()}`)),
    );
  });
  const wall = (performance.now() - t0) / 1000;
  const cpu1 = machineCpuSeconds();
  return { wall, cpu: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0 };
}

interface Workload {
  condition: string;
  data: Dataset;
  directions: ('up' | 'down')[];
  tools: Tool[];
  route: Route;
  prefix: string[];
  /** Runs before every single run (e.g. empties the server's dedup store). */
  reset?: () => void;
}

async function runWorkload(w: Workload, out: Measurement[]): Promise<void> {
  const kind = w.data === bigData ? 'big' : w.data.kind === 'tree' ? 'small' : 'text';
  if (!datasets.includes(kind)) return;
  warm(w.data.path);
  const tools = w.tools.filter(usable);
  for (const direction of w.directions) {
    const runs = new Map<
      string,
      { times: number[]; cpu: number[]; rssClient: number[]; rssServer: number[]; errors: string[] }
    >();
    for (let r = 0; r < reps; r++) {
      for (const tool of tools) {
        const dstDir = path.join(BASE, 'dst');
        const job: Job = { direction, kind: w.data.kind, src: w.data.path, dstDir, route: w.route };
        if (tool.can && !tool.can(job)) continue;
        rmSync(dstDir, { recursive: true, force: true });
        mkdirSync(dstDir, { recursive: true });
        // Every upload is a first upload: the server's dedup store starts empty (the repeat
        // case is measured on its own, in features).
        w.reset?.();
        const rec = runs.get(tool.name) ?? { times: [], cpu: [], rssClient: [], rssServer: [], errors: [] };
        runs.set(tool.name, rec);
        try {
          rmSync(RSS_LOG, { force: true });
          const measured =
            GNU_TIME && !tool.peer && tool.copies !== false
              ? [GNU_TIME, '-a', '-o', RSS_LOG, '-f', 'client %M']
              : [];
          const { wall: t, cpu } = await timed([...measured, ...tool.argv(job)], w.prefix);
          const rss = peakRss();
          if (tool.copies !== false) {
            const got = await digestOf(path.join(dstDir, path.basename(w.data.path)));
            if (got !== w.data.digest) throw new Error('copy differs from the source (BLAKE3)');
          }
          rec.times.push(t);
          if (cpu !== null) rec.cpu.push(cpu);
          if (rss.client !== null) rec.rssClient.push(rss.client);
          if (rss.server !== null) rec.rssServer.push(rss.server);
          process.stderr.write(
            `${w.condition} | ${w.data.name} ${direction} | ${tool.name} | ${t.toFixed(2)} s, CPU ${cpu?.toFixed(2) ?? '?'} s\n`,
          );
        } catch (err) {
          rec.errors.push((err as Error).message);
          process.stderr.write(
            `${w.condition} | ${w.data.name} ${direction} | ${tool.name} | FAILED ${(err as Error).message}\n`,
          );
        }
      }
    }
    rmSync(path.join(BASE, 'dst'), { recursive: true, force: true });
    for (const tool of tools) {
      const rec = runs.get(tool.name);
      if (!rec) continue;
      out.push({
        condition: w.condition,
        workload: `${w.data.name} ${direction === 'up' ? 'upload' : 'download'}`,
        bytes: w.data.bytes,
        files: w.data.files,
        tool: tool.name,
        peer: tool.peer,
        times: rec.times,
        cpu: rec.cpu,
        rssClient: rec.rssClient,
        rssServer: rec.rssServer,
        errors: rec.errors,
      });
    }
    checkpoint();
  }
}

async function main(): Promise<void> {
  ensurePeers();
  // bcmr's per-user cache (hosts with no bcmr server) stays in the scratch dir.
  process.env.XDG_CACHE_HOME = path.join(BASE, 'cache-home');
  mkdirSync(CACHE, { recursive: true });
  const big = await randomFile(CACHE, quick ? 128 << 20 : 1 << 30);
  bigData = big;
  const small = await smallTree(CACHE, quick ? 1000 : 10_000, 64 << 10);
  const text = await textFile(CACHE, quick ? 16 << 20 : 64 << 20);
  const results: Measurement[] = [];
  // notes and features fill in as the run goes: the checkpoints and the report see them as they are.
  const info: ReportInfo = { quick, reps, base: BASE, notes, textZstdRatio: text.zstdRatio, features };
  checkpoint = () => {
    const partial = { ...info, label: `partial-${conditions.join('+')}`, measurements: results };
    writeFileSync(path.join(BASE, 'checkpoint.json'), `${JSON.stringify(partial)}\n`);
  };
  const sshd = await startSshd({
    serveLog: false,
    serveWrap: GNU_TIME ? `'${GNU_TIME}' -a -o '${RSS_LOG}' -f 'server %M'` : undefined,
  });
  if (!GNU_TIME) notes.push('/usr/bin/time (GNU time) is not installed: no peak RSS figures.');
  const user = os.userInfo().username;
  const route = (alias: string, host: string, port: number, s: SshServer): Route => ({
    alias,
    rsh: s.rsh,
    config: s.sshArgv[2],
    host,
    port,
    user,
    keyFile: path.join(s.dir, 'user_key'),
  });
  const scaling = quick ? [bcmr(1), bcmr(4)] : [bcmr(1), bcmr(2), bcmr(4), bcmr(8)];
  const peers = quick ? [scp, rsync(), tarSsh] : [scp, rsync(), rclone, tarSsh];
  try {
    if (conditions.includes('loopback')) {
      const lo = route('bcmr-test', '127.0.0.1', sshd.port, sshd);
      // -P 2/4 stripe the one file over 2/4 connections; --direct=direct moves it over
      // AES-256-GCM TCP beside each ssh session.
      const bigTools = quick
        ? [bcmr(1), bcmr(4), bcmr(1, 'auto', true), bcmr(2, 'auto', true), ...peers, sshCat]
        : [
            bcmr(1),
            bcmr(2),
            bcmr(4),
            bcmr(1, 'none'),
            bcmr(1, 'auto', true),
            bcmr(2, 'auto', true),
            bcmr(4, 'auto', true),
            bcmr('auto'),
            bcmr('auto', 'auto', 'auto'),
            ...peers,
            sshCat,
          ];
      Object.assign(features, await ceilings());
      await runWorkload(
        {
          condition: 'loopback',
          data: big,
          directions: ['up', 'down'],
          tools: bigTools,
          route: lo,
          prefix: [],
          reset: () => rmSync(path.join(sshd.dir, 'cas'), { recursive: true, force: true }),
        },
        results,
      );
      await runWorkload(
        {
          condition: 'loopback',
          data: small,
          directions: ['up', 'down'],
          tools: [
            ...scaling,
            ...(quick ? [] : [bcmr(1, 'auto', true), bcmr('auto'), bcmr('auto', 'auto', 'auto')]),
            ...peers,
          ],
          route: lo,
          prefix: [],
          reset: () => rmSync(path.join(sshd.dir, 'cas'), { recursive: true, force: true }),
        },
        results,
      );
    }
    if (conditions.includes('servers')) {
      // Which server answers on the remote (issue 14): an installed bcmr, the zero-install
      // bundle on the remote's own Node (the system's, as a server would have it), or, with
      // neither bcmr nor node there, the plain-ssh fallback. scp and rsync for scale.
      const lo = route('bcmr-test', '127.0.0.1', sshd.port, sshd);
      const remoteNode = (() => {
        try {
          return execFileSync('sh', ['-c', 'PATH=/usr/local/bin:/usr/bin:/bin node --version'], {
            encoding: 'utf8',
          }).trim();
        } catch {
          return 'none';
        }
      })();
      const bundleBytes = (() => {
        try {
          return readFileSync(new URL('../../dist/bundle/bcmr-server.mjs', import.meta.url)).length;
        } catch {
          return 0;
        }
      })();
      notes.push(
        `servers: "installed" is bcmr on the remote PATH (Node ${process.version}); "bundle" runs the zero-install server bundle on the remote's system node (${remoteNode}: BLAKE3 from WebAssembly, no LZ4${Number(remoteNode.slice(1).split('.')[0]) < 22 ? ', no zstd' : ''}), cached on the remote (the first contact ships ${bundleBytes} bytes once, then nothing); "fallback" has neither bcmr nor node on the remote PATH.`,
      );
      const kinds = [
        bcmr(1, 'auto', false, { alias: 'bcmr-test', label: 'installed' }),
        bcmr(1, 'auto', false, { alias: 'bcmr-bare', label: 'bundle' }),
        bcmr(1, 'auto', false, { alias: 'bcmr-nonode', label: 'fallback' }),
        scp,
        rsync(),
      ];
      for (const data of [big, small])
        await runWorkload(
          {
            condition: 'servers',
            data,
            directions: ['up', 'down'],
            tools: kinds,
            route: lo,
            prefix: [],
            reset: () => rmSync(path.join(sshd.dir, 'cas'), { recursive: true, force: true }),
          },
          results,
        );
    }
    if (conditions.includes('fallback')) {
      // A remote with neither bcmr nor node (bcmr-nonode): the plain-ssh fallback's tar streams
      // against tar | ssh | tar, scp and rsync (issue 15). One untimed copy first: bcmr then
      // remembers the host has no server and skips the serve attempt, as every copy after a
      // user's first one does.
      const lo = route('bcmr-test', '127.0.0.1', sshd.port, sshd);
      const fb = bcmr(1, 'auto', false, { alias: 'bcmr-nonode', label: 'fallback' });
      const warmDir = path.join(BASE, 'fallback-warm');
      mkdirSync(warmDir, { recursive: true });
      await timed(fb.argv({ direction: 'up', kind: 'file', src: text.path, dstDir: warmDir, route: lo }), []);
      rmSync(warmDir, { recursive: true, force: true });
      notes.push(
        'fallback: bcmr on a remote with neither bcmr nor node (trees as one tar stream each way, big files one cat each), after one untimed copy that let it remember the host.',
      );
      const tree = await smallTree(CACHE, quick ? 500 : 2000, 64 << 10);
      for (const data of [tree, big])
        await runWorkload(
          {
            condition: 'fallback',
            data,
            directions: ['up', 'down'],
            tools: [fb, tarSsh, scp, rsync()],
            route: lo,
            prefix: [],
          },
          results,
        );
    }
    if (conditions.includes('features')) {
      const dir = path.join(BASE, 'features-sync');
      Object.assign(features, await syncCost(route('bcmr-test', '127.0.0.1', sshd.port, sshd), small, dir));
      rmSync(dir, { recursive: true, force: true });
    }
    if (conditions.includes('latency')) {
      const proxy = await startDelayProxy('127.0.0.1', sshd.port, rtt);
      sshd.addAlias('bcmr-delay', '127.0.0.1', proxy.port);
      notes.push(
        `latency: a userspace proxy adds ${rtt} ms RTT (${rtt / 2} ms each way, pipelined). scp and rclone are left out there: they wait for round trips per file (10,000 files would take many minutes).`,
      );
      try {
        const tools = [bcmr(1), bcmr(4), rsync(), tarSsh];
        await runWorkload(
          {
            condition: `${rtt} ms RTT`,
            data: small,
            directions: ['up', 'down'],
            tools,
            route: route('bcmr-delay', '127.0.0.1', proxy.port, sshd),
            prefix: [],
            reset: () => rmSync(path.join(sshd.dir, 'cas'), { recursive: true, force: true }),
          },
          results,
        );
      } finally {
        await proxy.close();
      }
    }
    if (conditions.includes('wan')) {
      const why = wanUnavailable();
      if (why) notes.push(`WAN paths skipped: ${why}.`);
      for (const [k, [rttMs, mbit]] of (why ? [] : wanPaths).entries()) {
        // The first path gets every tool and both datasets; the longer ones (one stream at
        // 20 MB/s: a minute per cell) the big file and the tools that tell the story.
        const first = k === 0;
        const condition = `WAN ${rttMs} ms, ${mbit} Mbit/s`;
        const wan = await setupWan(path.join(BASE, 'wan'), rttMs, mbit);
        try {
          const inner = await startSshd({
            serveLog: false,
            listen: wan.serverAddr,
            wrap: wan.inServer,
            serveWrap: GNU_TIME ? `'${GNU_TIME}' -a -o '${RSS_LOG}' -f 'server %M'` : undefined,
          });
          const receivers = await startTcpReceivers(wan);
          try {
            const r = route('bcmr-test', wan.serverAddr, inner.port, inner);
            const reset = () => rmSync(path.join(inner.dir, 'cas'), { recursive: true, force: true });
            const auto = [bcmr('auto'), bcmr('auto', 'auto', 'auto')];
            const striped = first ? [bcmr(1), bcmr(2), bcmr(4), bcmr(8)] : [bcmr(1), bcmr(4)];
            const direct = first
              ? [bcmr(1, 'auto', true), bcmr(2, 'auto', true), bcmr(4, 'auto', true)]
              : [bcmr(1, 'auto', true), bcmr(4, 'auto', true)];
            const peers = first ? [scp, rsync(), rclone, tarSsh] : [scp, rsync()];
            await runWorkload(
              {
                condition,
                data: big,
                directions: ['up', 'down'],
                tools: [
                  ...striped,
                  ...direct,
                  ...auto,
                  ...peers,
                  rawTcp(wan, receivers, 1),
                  rawTcp(wan, receivers, 4),
                ],
                route: r,
                prefix: wan.inClient,
                reset,
              },
              results,
            );
            // scp and rclone wait for round trips per file: 10,000 files would take many minutes.
            if (first)
              await runWorkload(
                {
                  condition,
                  data: small,
                  directions: ['up', 'down'],
                  tools: [bcmr(1), bcmr(4), bcmr(8), bcmr(4, 'auto', true), ...auto, rsync(), tarSsh],
                  route: r,
                  prefix: wan.inClient,
                  reset,
                },
                results,
              );
          } finally {
            receivers.stop();
            await inner.stop();
          }
        } finally {
          const counters = await wan.teardown();
          notes.push(
            `${condition}: every packet between two network namespaces through bench/wan/wanlink.c (${rttMs / 2} ms each way, ${mbit} Mbit/s, 50 ms router queue, MTU 9000, kernel-default TCP buffers); ${counters.replace(/^wanlink: /, '')}.`,
          );
        }
      }
    }
    if (conditions.includes('fanout') && datasets.includes('big')) {
      // Three hosts: three aliases of one sshd (each its own ssh connection and server).
      const fan = async (condition: string, server: SshServer, host: string, prefix: string[]) => {
        server.addAlias('bcmr-fan2', host, server.port);
        server.addAlias('bcmr-fan3', host, server.port);
        results.push(
          ...(await fanOutCondition({
            condition,
            hosts: ['bcmr-test', 'bcmr-fan2', 'bcmr-fan3'],
            config: server.sshArgv[2],
            rsh: server.rsh,
            cas: path.join(server.dir, 'cas'),
            prefix,
            reps,
            timed,
            work: path.join(BASE, 'fanout'),
            big,
          })),
        );
      };
      await fan('fanout', sshd, '127.0.0.1', []);
      const why = wanUnavailable();
      if (why) notes.push(`fanout over the WAN path skipped: ${why}.`);
      else {
        const [rttMs, mbit] = wanPaths[0];
        const wan = await setupWan(path.join(BASE, 'wan'), rttMs, mbit);
        try {
          const inner = await startSshd({ serveLog: false, listen: wan.serverAddr, wrap: wan.inServer });
          try {
            await fan(`fanout, WAN ${rttMs} ms, ${mbit} Mbit/s`, inner, wan.serverAddr, wan.inClient);
          } finally {
            await inner.stop();
          }
        } finally {
          await wan.teardown();
        }
      }
      notes.push(
        'fanout: one file to three hosts (three aliases of one sshd, each its own connection and server): `bcmr copy --to` x3 at once against three `bcmr copy` and three `scp` one after another.',
      );
    }
    if (conditions.includes('resync')) {
      // Both tools through a counting proxy to the same sshd: bytes on the wire per run.
      const proxy = await startCountingProxy('127.0.0.1', sshd.port);
      sshd.addAlias('bcmr-count', '127.0.0.1', proxy.port);
      notes.push(
        'resync: `bcmr sync` and `rsync -a` re-run over a destination holding an earlier copy (made with `cp -a`); on loopback both go through a counting TCP proxy (one more userspace hop for each) that gives the bytes on the wire, both directions of the ssh connection.',
      );
      try {
        results.push(
          ...(await resyncCondition({
            condition: 'resync',
            route: { alias: 'bcmr-count', rsh: sshd.rsh },
            prefix: [],
            proxy,
            reps,
            timed,
            work: path.join(BASE, 'resync'),
            tree: datasets.includes('small') ? small : undefined,
            big: datasets.includes('big') ? big : undefined,
          })),
        );
      } finally {
        await proxy.close();
      }
      const why = wanUnavailable();
      if (why) notes.push(`resync over the WAN path skipped: ${why}.`);
      else if (datasets.includes('big')) {
        const [rttMs, mbit] = wanPaths[0];
        const wan = await setupWan(path.join(BASE, 'wan'), rttMs, mbit);
        try {
          const inner = await startSshd({ serveLog: false, listen: wan.serverAddr, wrap: wan.inServer });
          try {
            results.push(
              ...(await resyncCondition({
                condition: `resync, WAN ${rttMs} ms, ${mbit} Mbit/s`,
                route: { alias: 'bcmr-test', rsh: inner.rsh },
                prefix: wan.inClient,
                reps,
                timed,
                work: path.join(BASE, 'resync-wan'),
                big,
              })),
            );
          } finally {
            await inner.stop();
          }
        } finally {
          const counters = await wan.teardown();
          notes.push(`resync over WAN ${rttMs} ms, ${mbit} Mbit/s: ${counters.replace(/^wanlink: /, '')}.`);
        }
      }
    }
    if (conditions.includes('slow')) {
      const why = slowLinkUnavailable();
      if (why) notes.push(`slow link skipped: ${why}.`);
      else {
        const link = setupSlowLink(10_000_000);
        try {
          const inner = await startSshd({
            serveLog: false,
            listen: link.serverAddr,
            wrap: ['ip', 'netns', 'exec', link.serverNs],
          });
          try {
            notes.push(
              `slow link: 10 MB/s each way (tc tbf on a veth pair between two network namespaces). Text zstd-3 ratio on 4 MiB blocks: ${text.zstdRatio.toFixed(2)}.`,
            );
            const tools = [
              bcmr(1),
              bcmr(1, 'none'),
              scp,
              rsync(),
              rsync(true),
              ...(quick ? [] : [rclone]),
              tarSsh,
            ];
            if (conditions.includes('features')) {
              const r = route('bcmr-test', link.serverAddr, inner.port, inner);
              const dir = path.join(BASE, 'features');
              rmSync(dir, { recursive: true, force: true });
              mkdirSync(dir, { recursive: true });
              const dedupData = await randomFile(path.join(CACHE, 'dedup'), quick ? 16 << 20 : 64 << 20);
              Object.assign(features, await dedupRepeat(r, link.inClient, dedupData, dir));
              Object.assign(features, await resumeAfterKill(r, link.inClient, dedupData, dir));
              rmSync(dir, { recursive: true, force: true });
            }
            await runWorkload(
              {
                condition: '10 MB/s',
                data: text,
                directions: ['up'],
                tools,
                route: route('bcmr-test', link.serverAddr, inner.port, inner),
                prefix: link.inClient,
                reset: () => rmSync(path.join(inner.dir, 'cas'), { recursive: true, force: true }),
              },
              results,
            );
          } finally {
            await inner.stop();
          }
        } finally {
          link.teardown();
        }
      }
    }
  } finally {
    await sshd.stop();
  }
  const all = ALL_CONDITIONS.split(',').every((c) => conditions.includes(c));
  const everyDataset = ['big', 'small', 'text'].every((d) => datasets.includes(d));
  const label =
    all && everyDataset ? undefined : [...conditions, ...(everyDataset ? [] : datasets)].join('+');
  writeReport(results, { ...info, label });
}

/** `--from-json FILE`: re-render the tables and charts of an earlier run without running it. */
async function rerender(file: string): Promise<void> {
  const j = JSON.parse(readFileSync(file, 'utf8')) as ReportInfo & { measurements: Measurement[] };
  writeReport(j.measurements, {
    quick: j.quick,
    reps: j.reps,
    base: j.base,
    notes: j.notes,
    textZstdRatio: j.textZstdRatio,
    features: j.features ?? {},
    label: j.label,
  });
}

const fromJson = opt('--from-json');
(fromJson ? rerender(fromJson) : main()).catch((err: Error) => {
  process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
