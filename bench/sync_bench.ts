/**
 * Re-runs: `bcmr sync` against `rsync -a` at rsync's own game, through the test harness's
 * sshd on loopback. Cells, each tool interleaved per round, wall seconds and whole-machine CPU
 * seconds (/proc/stat busy jiffies before and after):
 *   unchanged    10,000 x 64 KiB already at the destination: nothing to send
 *   touched      the same tree with 100 files rewritten (same size, new bytes, new mtime)
 *   edited       one 256 MiB file with 16 scattered one-byte edits
 * Each tool has its own destination, made identical to the source before the timed round
 * (a first untimed run). Writes bench/results/<date>-sync.md.
 *
 *   node dist/bench/sync_bench.js [--rounds 3] [--files 10000]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSshd } from '../test/harness/sshd.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, '../../bin/bcmr.js');
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROUNDS = arg('--rounds', 3);
const FILES = arg('--files', 10_000);

function machineCpuSeconds(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0)) / 100;
}

function timed(argv: string[]): { wall: number; cpu: number } {
  const cpu0 = machineCpuSeconds();
  const t0 = performance.now();
  // A run that hangs is a finding, not a wait: it is killed after 2 minutes and said.
  const r = spawnSync(argv[0], argv.slice(1), {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    timeout: 120_000,
    killSignal: 'SIGKILL',
    env: { ...process.env, BCMR_DEBUG: '1' },
  });
  if (r.error) throw new Error(`${argv[0]}: ${r.error.message}`);
  const wall = (performance.now() - t0) / 1000;
  const cpu = machineCpuSeconds() - cpu0;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { wall, cpu };
}

function flip(file: string, offsets: number[], bump: number): void {
  const fd = fs.openSync(file, 'r+');
  for (const o of offsets) {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, o);
    b[0] ^= 0xff;
    fs.writeSync(fd, b, 0, 1, o);
  }
  fs.closeSync(fd);
  const t = Date.now() / 1000 + bump;
  fs.utimesSync(file, t, t);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const sshd = await startSshd({ serveLog: false });
  const scratch = fs.mkdtempSync('/dev/shm/bcmr-sync-bench-');
  try {
    const tree = path.join(scratch, 'tree');
    for (let i = 0; i < FILES; i++) {
      const d = path.join(tree, `d${i % 100}`);
      if (i < 100) fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, `f${i}`), randomBytes(64 << 10));
    }
    const big = path.join(scratch, 'big');
    fs.mkdirSync(big);
    const bigFile = path.join(big, 'big.bin');
    const fd = fs.openSync(bigFile, 'w');
    for (let i = 0; i < 64; i++) fs.writeSync(fd, randomBytes(4 << 20));
    fs.closeSync(fd);
    const rsh = sshd.rsh;
    const tools = {
      'rsync -a': (src: string, dst: string) => ['rsync', '-a', '-e', rsh, `${src}/`, `bcmr-test:${dst}/`],
      'bcmr sync': (src: string, dst: string) => [
        process.execPath,
        BIN,
        'sync',
        '--rsh',
        rsh,
        '--progress',
        'off',
        src,
        `bcmr-test:${dst}`,
      ],
    } as const;
    type ToolName = keyof typeof tools;
    const rows: string[] = [];
    const cell = (name: string, src: string, change: (round: number) => void) => {
      const res: Record<ToolName, { wall: number[]; cpu: number[] }> = {
        'rsync -a': { wall: [], cpu: [] },
        'bcmr sync': { wall: [], cpu: [] },
      };
      const slug = name.split(':')[0].replace(/\W+/g, '-');
      const dst = (t: ToolName) => path.join(scratch, `dst-${slug}-${t === 'rsync -a' ? 'rsync' : 'bcmr'}`);
      for (const t of Object.keys(tools) as ToolName[]) timed(tools[t](src, dst(t)));
      for (let round = 0; round < ROUNDS; round++) {
        change(round);
        for (const t of Object.keys(tools) as ToolName[]) {
          const m = timed(tools[t](src, dst(t)));
          res[t].wall.push(m.wall);
          res[t].cpu.push(m.cpu);
        }
      }
      const r = res['rsync -a'];
      const b = res['bcmr sync'];
      rows.push(
        `| ${name} | ${median(r.wall).toFixed(2)} (${median(r.cpu).toFixed(2)}) | ${median(b.wall).toFixed(2)} (${median(b.cpu).toFixed(2)}) | ${(median(b.wall) / median(r.wall)).toFixed(2)}x / ${(median(b.cpu) / median(r.cpu)).toFixed(2)}x |`,
      );
      process.stderr.write(`${rows[rows.length - 1]}\n`);
    };
    cell(`unchanged, ${FILES} x 64 KiB`, tree, () => {});
    cell(`touched: 100 of ${FILES} files rewritten`, tree, (round) => {
      for (let i = 0; i < 100; i++) {
        const n = (i * 97 + round * 13) % FILES;
        fs.writeFileSync(path.join(tree, `d${n % 100}`, `f${n}`), randomBytes(64 << 10));
      }
    });
    cell('edited: 256 MiB file, 16 one-byte edits', big, (round) => {
      const offsets = Array.from({ length: 16 }, (_, i) => i * (16 << 20) + 12_345 + round * 4099);
      flip(bigFile, offsets, 10 + round);
    });
    const date = new Date().toISOString().slice(0, 10);
    const cpuModel = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '?';
    const rsyncVersion = execFileSync('rsync', ['--version'], { encoding: 'utf8' }).split('\n')[0];
    const text = `# Re-runs: bcmr sync against rsync -a (${date})

Loopback through the test harness's sshd, data in /dev/shm; ${ROUNDS} rounds, the two tools
interleaved in each; medians. Wall s, whole-machine CPU s in parentheses (every process: both
tools' ssh and sshd, the remote side, the kernel). ${cpuModel}, ${rsyncVersion}.
\`node dist/bench/sync_bench.js --rounds ${ROUNDS} --files ${FILES}\`.

| re-run | rsync -a | bcmr sync | bcmr / rsync (wall / CPU) |
|---|---|---|---|
${rows.join('\n')}

rsync sends its changed files with its rolling checksum (the whole file is read on both ends);
bcmr compares by offset, 4 MiB blocks then 64 KiB pieces by BLAKE3 on each host, and sends only
the 64 KiB pieces that differ.
`;
    const out = path.resolve(here, `../../bench/results/${date}-sync.md`);
    fs.writeFileSync(out, text);
    process.stdout.write(text);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
    await sshd.stop();
  }
}

await main();
