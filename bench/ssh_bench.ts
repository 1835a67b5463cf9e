/**
 * `npm run bench:ssh`: bcmr (-P 1 and -P 4) against scp through the test harness's real sshd on
 * 127.0.0.1, in the same run: a 1 GiB random file and a tree of 10,000 x 64 KiB random files,
 * up and down. Each case runs `--reps` times (default 3), tools interleaved, and the median
 * counts. Writes a Markdown table (bench/results/DATE-ssh.md) and appends NDJSON
 * (bench/results/ssh.ndjson).
 *
 * Scratch space: BCMR_BENCH_DIR, default /dev/shm/bcmr-bench (tmpfs), so that what is measured
 * is the transfer and not this machine's disk; source files are in the page cache.
 * Options: --quick (256 MiB, 2,000 files, 1 rep), --reps N, --only big|small.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type SshServer, startSshd } from '../test/harness/sshd.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, '../../bin/bcmr.js');
const RESULTS = path.resolve(here, '../../bench/results');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const reps = Number(args[args.indexOf('--reps') + 1]) || (quick ? 1 : 3);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : null;
const BASE =
  process.env.BCMR_BENCH_DIR ?? (existsSync('/dev/shm') ? '/dev/shm/bcmr-bench' : '/var/tmp/bcmr-bench');
const BIG = (quick ? 256 : 1024) << 20;
const NFILES = quick ? 2000 : 10_000;
const SMALL = 64 << 10;

function sh(cmd: string): void {
  execFileSync('sh', ['-c', cmd], { stdio: 'ignore' });
}

function datasets(): { big: string; tree: string } {
  mkdirSync(path.join(BASE, 'src'), { recursive: true });
  const big = path.join(BASE, 'src', `random-${BIG}.bin`);
  if (!existsSync(big) || statSync(big).size !== BIG) sh(`head -c ${BIG} /dev/urandom > '${big}'`);
  const tree = path.join(BASE, 'src', `small-${NFILES}`);
  if (!existsSync(path.join(tree, '.complete'))) {
    rmSync(tree, { recursive: true, force: true });
    for (let d = 0; d < 100; d++) mkdirSync(path.join(tree, `d${d}`), { recursive: true });
    sh(
      `cd '${tree}' && i=0; while [ $i -lt ${NFILES} ]; do head -c ${SMALL} /dev/urandom > d$((i % 100))/f$i; i=$((i+1)); done`,
    );
    writeFileSync(path.join(tree, '.complete'), '');
  }
  // Warm the page cache from a child, so our own RSS stays small.
  sh(`cat '${big}' > /dev/null; find '${tree}' -type f -exec cat {} + > /dev/null`);
  return { big, tree };
}

async function run(argv: string[]): Promise<number> {
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const c = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (b: Buffer) => (err += b.toString()));
    c.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${argv.join(' ')}: exit ${code}: ${err}`)),
    );
  });
  return (performance.now() - t0) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

interface Case {
  name: string;
  bytes: number;
  files: number;
  /** Tool -> argv builder given (src, dst). */
  tools: Record<string, (src: string, dst: string) => string[]>;
  src: string;
  remote: 'up' | 'down';
}

async function main(): Promise<void> {
  const sshd: SshServer = await startSshd({ serveLog: false });
  try {
    const { big, tree } = datasets();
    const cfg = sshd.sshArgv[2];
    const node = process.execPath;
    const bcmr = (n: number) => (src: string, dst: string) => [
      node,
      BIN,
      'copy',
      '-r',
      '-f',
      '-P',
      String(n),
      '--rsh',
      sshd.rsh,
      src,
      dst,
    ];
    const scp = (src: string, dst: string) => ['scp', '-q', '-r', '-F', cfg, src, dst];
    const tools = { 'bcmr -P 1': bcmr(1), 'bcmr -P 4': bcmr(4), scp };
    const cases: Case[] = [];
    if (only !== 'small') {
      cases.push({
        name: `${BIG >> 20} MiB file, upload`,
        bytes: BIG,
        files: 1,
        tools,
        src: big,
        remote: 'up',
      });
      cases.push({
        name: `${BIG >> 20} MiB file, download`,
        bytes: BIG,
        files: 1,
        tools,
        src: big,
        remote: 'down',
      });
    }
    if (only !== 'big') {
      const bytes = NFILES * SMALL;
      cases.push({
        name: `${NFILES} x 64 KiB, upload`,
        bytes,
        files: NFILES,
        tools,
        src: tree,
        remote: 'up',
      });
      cases.push({
        name: `${NFILES} x 64 KiB, download`,
        bytes,
        files: NFILES,
        tools,
        src: tree,
        remote: 'down',
      });
    }
    // Reference ceilings: the ssh stream itself, no tool on either end.
    const cat = async (cipher: string | null) =>
      run([
        'sh',
        '-c',
        `cat '${big}' | ssh -F '${cfg}' ${cipher ? `-c ${cipher}` : ''} bcmr-test 'cat > /dev/null'`,
      ]);
    const ceilings =
      only === 'small'
        ? null
        : {
            default: median(await repeat(() => cat(null))),
            aes128gcm: median(await repeat(() => cat('aes128-gcm@openssh.com'))),
          };

    const rows: {
      case: string;
      tool: string;
      seconds: number;
      all: number[];
      mbps: number;
      filesPerS: number;
    }[] = [];
    for (const c of cases) {
      const times: Record<string, number[]> = {};
      for (let r = 0; r < reps; r++) {
        for (const [tool, argv] of Object.entries(c.tools)) {
          const dstDir = path.join(BASE, 'dst');
          rmSync(dstDir, { recursive: true, force: true });
          mkdirSync(dstDir, { recursive: true });
          const dst = path.join(dstDir, 'out');
          const a = c.remote === 'up' ? argv(c.src, `bcmr-test:${dst}`) : argv(`bcmr-test:${c.src}`, dst);
          sh('sync');
          const t = await run(a);
          times[tool] ??= [];
          times[tool].push(t);
          process.stderr.write(`${c.name} | ${tool} | ${t.toFixed(2)} s\n`);
        }
      }
      rmSync(path.join(BASE, 'dst'), { recursive: true, force: true });
      for (const [tool, ts] of Object.entries(times)) {
        const s = median(ts);
        rows.push({
          case: c.name,
          tool,
          seconds: s,
          all: ts,
          mbps: c.bytes / 1e6 / s,
          filesPerS: c.files / s,
        });
      }
    }
    report(rows, ceilings);
  } finally {
    await sshd.stop();
  }
}

async function repeat(fn: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < reps; i++) out.push(await fn());
  return out;
}

function report(
  rows: { case: string; tool: string; seconds: number; all: number[]; mbps: number; filesPerS: number }[],
  ceilings: { default: number; aes128gcm: number } | null,
): void {
  const date = new Date().toISOString();
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? os.arch();
  const lines = [
    `# bcmr over ssh vs scp (${date.slice(0, 10)})`,
    '',
    `Machine: ${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, OpenSSH ${execFileSync('ssh', ['-V'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) || ''}`.trim(),
    `Server: the test harness's sshd on 127.0.0.1; client and server on the same machine. Scratch: ${BASE}. Median of ${reps} run(s), tools interleaved.`,
    '',
    '| case | tool | median s | runs (s) | MB/s | files/s | vs scp |',
    '|---|---|---:|---|---:|---:|---:|',
  ];
  for (const r of rows) {
    const scp = rows.find((x) => x.case === r.case && x.tool === 'scp');
    const ratio = scp ? (r.seconds / scp.seconds).toFixed(2) : '';
    lines.push(
      `| ${r.case} | ${r.tool} | ${r.seconds.toFixed(2)} | ${r.all.map((t) => t.toFixed(2)).join(', ')} | ${r.mbps.toFixed(0)} | ${r.filesPerS.toFixed(0)} | ${ratio} |`,
    );
  }
  if (ceilings) {
    lines.push(
      '',
      `ssh stream ceiling, \`cat | ssh 'cat > /dev/null'\` of the big file: default cipher ${ceilings.default.toFixed(2)} s, aes128-gcm ${ceilings.aes128gcm.toFixed(2)} s.`,
    );
  }
  const md = `${lines.join('\n')}\n`;
  process.stdout.write(md);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(path.join(RESULTS, `${date.slice(0, 10)}-ssh${quick ? '-quick' : ''}.md`), md);
  appendFileSync(
    path.join(RESULTS, 'ssh.ndjson'),
    `${JSON.stringify({ date, quick, reps, base: BASE, rows, ceilings })}\n`,
  );
}

main().catch((err: Error) => {
  process.stderr.write(`bench:ssh: ${err.message}\n`);
  process.exitCode = 1;
});
