/**
 * `npm run bench:protocol`: client <-> spawned `bcmr serve` over plain pipes (no ssh).
 * Get and Put of a 1 GiB cached file (raw and zstd), 10,000 x 64 KiB pipelined both ways,
 * zstd-3 encode speed on text; MB/s, files/s and peak RSS of both processes.
 * Options: --quick (256 MiB and 2,000 files), --json FILE (append the figures).
 */
import { execFileSync, spawn } from 'node:child_process';
import { appendFile, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getFiles } from '../src/client/serve/get_files.js';
import { putFiles } from '../src/client/serve/put_files.js';
import { DEFAULT_CLIENT_CAPS, ServeClient } from '../src/client/serve/serve_client.js';
import { encodeBlock } from '../src/codec/block.js';
import { Cap } from '../src/protocol/constants.js';
import { childChannel } from '../src/transport/channel.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, '../../bin/bcmr.js');
/**
 * Datasets and scratch space. Default /var/tmp: on these machines creating a file under /tmp
 * or /work costs 10-25x more than under /var/tmp, which would measure the sandbox, not bcmr.
 */
const BASE = process.env.BCMR_BENCH_DIR ?? '/var/tmp/bcmr-bench';
const CACHE = path.join(BASE, 'cache');
const quick = process.argv.includes('--quick');
const jsonIdx = process.argv.indexOf('--json');
const BIG = (quick ? 256 : 1024) * 1024 * 1024;
const NFILES = quick ? 2000 : 10_000;
const SMALL = 64 * 1024;
const MB = 1e6;

interface Session {
  client: ServeClient;
  serverPeakKiB: () => Promise<number>;
}

async function session(root: string, caps: number): Promise<Session> {
  const child = spawn(process.execPath, [BIN, 'serve', '--root', root], { stdio: ['pipe', 'pipe', 'pipe'] });
  let peak = 0;
  const sample = setInterval(() => {
    readFile(`/proc/${child.pid}/status`, 'utf8')
      .then((s) => {
        const m = /VmHWM:\s+(\d+)/.exec(s);
        if (m) peak = Math.max(peak, Number(m[1]));
      })
      .catch(() => {});
  }, 50);
  const client = await ServeClient.connect(childChannel(child), { caps });
  child.once('close', () => clearInterval(sample));
  return {
    client,
    serverPeakKiB: async () => {
      const s = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
      const m = /VmHWM:\s+(\d+)/.exec(s);
      return Math.max(peak, m ? Number(m[1]) : 0);
    },
  };
}

/** Datasets are written by child processes so their buffers do not count in our peak RSS. */
async function ensureDatasets(): Promise<{ big: string; smallDir: string }> {
  await mkdir(CACHE, { recursive: true });
  const big = path.join(CACHE, `random-${BIG}.bin`);
  if ((await stat(big).catch(() => null))?.size !== BIG) {
    execFileSync('sh', ['-c', `head -c ${BIG} /dev/urandom > '${big}'`]);
  }
  const smallDir = path.join(CACHE, `small-${NFILES}`);
  const marker = path.join(smallDir, '.complete');
  if (!(await stat(marker).catch(() => null))) {
    await rm(smallDir, { recursive: true, force: true });
    for (let d = 0; d < 100; d++) await mkdir(path.join(smallDir, `d${d}`), { recursive: true });
    const script = `i=0; while [ $i -lt ${NFILES} ]; do head -c ${SMALL} /dev/urandom > d$((i % 100))/f$i; i=$((i+1)); done; touch .complete`;
    execFileSync('sh', ['-c', script], { cwd: smallDir });
  }
  return { big, smallDir };
}

/** Real text: documentation and sources from the system, cycled to 64 MiB. */
async function textCorpus(): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  const roots = ['/usr/share/doc', '/usr/include', path.resolve(here, '../../node_modules/typescript/lib')];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (total >= 64 * 1024 * 1024) return;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && /\.(h|txt|md|ts|js|html)$|copyright$/.test(e.name)) {
        const b = await readFile(p).catch(() => null);
        if (b) {
          parts.push(b);
          total += b.length;
        }
      }
    }
  };
  for (const r of roots) await walk(r);
  return Buffer.concat(parts).subarray(0, 64 * 1024 * 1024);
}

function listSmall(dir: string): { rel: string; abs: string }[] {
  const out: { rel: string; abs: string }[] = [];
  for (let i = 0; i < NFILES; i++)
    out.push({ rel: `d${i % 100}/f${i}`, abs: path.join(dir, `d${i % 100}`, `f${i}`) });
  return out;
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await fn();
  return [(performance.now() - t0) / 1000, r];
}

const results: Record<string, number | string> = {};
function report(name: string, value: number, unit: string): void {
  results[`${name} (${unit})`] = Math.round(value * 10) / 10;
  const rss = process.resourceUsage().maxRSS >> 10;
  console.log(
    `${name.padEnd(46)} ${value.toFixed(1).padStart(10)} ${unit.padEnd(8)} client peak RSS so far ${rss} MiB`,
  );
}

async function main(): Promise<void> {
  const { big, smallDir } = await ensureDatasets();
  const work = path.join(BASE, `run-${process.pid}`);
  await mkdir(work, { recursive: true });
  const serverRoot = path.join(work, 'server');
  const back = path.join(work, 'back');
  await mkdir(serverRoot, { recursive: true });
  await mkdir(back, { recursive: true });
  let serverPeak = 0;
  try {
    // Warm the page cache in a child process: reading the file here would put it in our RSS.
    execFileSync('sh', ['-c', `cat '${big}' > /dev/null`]);
    // On /dev/shm nothing waits for the disk: that run measures the protocol itself.
    const shm = path.join('/dev/shm', `bcmr-bench-${process.pid}`);
    for (const [label, caps, where] of [
      ['raw, disk', Cap.PUT_OFFSET, work],
      ['zstd, disk', DEFAULT_CLIENT_CAPS, work],
      ['raw, tmpfs', Cap.PUT_OFFSET, shm],
    ] as const) {
      const serverRoot = path.join(where, 'server');
      const back = path.join(where, 'back');
      await mkdir(serverRoot, { recursive: true });
      await mkdir(back, { recursive: true });
      const s = await session(serverRoot, caps);
      const [tPut, up] = await timed(() => putFiles(s.client, [{ local: big, remote: 'big.bin' }]));
      if (up[0].error) throw up[0].error;
      report(`Put 1 file ${BIG / 2 ** 20} MiB ${label}`, BIG / MB / tPut, 'MB/s');
      const [tGet, down] = await timed(() =>
        getFiles(s.client, [{ remote: 'big.bin', local: path.join(back, 'big.bin'), size: BIG }]),
      );
      if (down[0].error) throw down[0].error;
      report(`Get 1 file ${BIG / 2 ** 20} MiB ${label}`, BIG / MB / tGet, 'MB/s');
      serverPeak = Math.max(serverPeak, await s.serverPeakKiB());
      await s.client.close();
      await rm(path.join(back, 'big.bin'), { force: true });
      await rm(path.join(serverRoot, 'big.bin'), { force: true });
    }
    await rm(shm, { recursive: true, force: true });

    const files = listSmall(smallDir);
    const s = await session(serverRoot, DEFAULT_CLIENT_CAPS);
    for (let d = 0; d < 100; d++) await mkdir(path.join(back, `d${d}`), { recursive: true });
    const [tUp, up] = await timed(() =>
      putFiles(
        s.client,
        files.map((f) => ({ local: f.abs, remote: `small/${f.rel}` })),
      ),
    );
    if (up.some((r) => r.error)) throw up.find((r) => r.error)?.error;
    report(`Put ${NFILES} x 64 KiB`, NFILES / tUp, 'files/s');
    const [tDown, down] = await timed(() =>
      getFiles(
        s.client,
        files.map((f) => ({ remote: `small/${f.rel}`, local: path.join(back, f.rel), size: SMALL })),
      ),
    );
    if (down.some((r) => r.error)) throw down.find((r) => r.error)?.error;
    report(`Get ${NFILES} x 64 KiB`, NFILES / tDown, 'files/s');
    serverPeak = Math.max(serverPeak, await s.serverPeakKiB());
    await s.client.close();

    const clientPeak = process.resourceUsage().maxRSS;
    const text = await textCorpus();
    const blocks: Buffer[] = [];
    for (let o = 0; o + 4 * 2 ** 20 <= text.length; o += 4 * 2 ** 20)
      blocks.push(text.subarray(o, o + 4 * 2 ** 20));
    let compressed = 0;
    const [tZ] = await timed(async () => {
      for (const b of blocks) {
        const f = encodeBlock(b, 'zstd');
        compressed += f.type === 'DataCompressed' ? f.payload.length : f.data.length;
      }
    });
    const textBytes = blocks.length * 4 * 2 ** 20;
    report('zstd-3 encode, text (1 core)', textBytes / MB / tZ, 'MB/s');
    report('zstd-3 ratio on that text', textBytes / compressed, 'x');
    report('peak RSS client (transfers)', clientPeak / 1024, 'MiB');
    report('peak RSS server', serverPeak / 1024, 'MiB');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  if (jsonIdx > 0) {
    const file = process.argv[jsonIdx + 1];
    await appendFile(
      file,
      `${JSON.stringify({ date: new Date().toISOString(), host: os.hostname(), quick, results })}\n`,
    );
  }
}

main().catch((err: Error) => {
  console.error(`bench: ${err.message}`);
  process.exitCode = 1;
});
