/**
 * The `resync` condition (issue 25): `bcmr sync` against `rsync -a` at rsync's own game, a
 * re-run over a destination that already holds an earlier copy. Cells:
 *   unchanged up / down   10,000 x 64 KiB already at the destination: nothing to send
 *   edited                the same tree with 100 files edited in place, one byte each
 *   1 GiB, 16 edits       one 1 GiB file with 16 scattered 4 KiB edits, up; on loopback and
 *                         over the WAN path (bench/wan_link.ts) when it can be built
 * Each tool has its own destination, made a copy of the source (`cp -a`: same bytes, modes and
 * mtimes) before the cell; every round changes the source, then runs each tool (interleaved)
 * and checks the copy with BLAKE3. On loopback both tools go through a counting TCP proxy: the
 * bytes each sends and receives on the wire (ssh's encrypted stream, both directions).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CountingProxy } from './count_proxy.js';
import { type Dataset, digestOf } from './datasets.js';
import type { Measurement } from './report.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, '../../bin/bcmr.js');

export interface ResyncRoute {
  alias: string;
  rsh: string;
}

type Timed = (argv: string[], prefix: string[]) => Promise<{ wall: number; cpu: number | null }>;

interface ResyncTool {
  name: string;
  peer: boolean;
  argv(route: ResyncRoute, dir: 'up' | 'down', src: string, dst: string): string[];
}

const TOOLS: ResyncTool[] = [
  {
    name: 'rsync -a',
    peer: true,
    argv: (r, dir, src, dst) =>
      dir === 'up'
        ? ['rsync', '-a', '-e', r.rsh, `${src}/`, `${r.alias}:${dst}/`]
        : ['rsync', '-a', '-e', r.rsh, `${r.alias}:${src}/`, `${dst}/`],
  },
  {
    name: 'bcmr sync',
    peer: false,
    argv: (r, dir, src, dst) => [
      process.execPath,
      BIN,
      'sync',
      '--rsh',
      r.rsh,
      '--progress',
      'off',
      ...(dir === 'up' ? [src, `${r.alias}:${dst}`] : [`${r.alias}:${src}`, dst]),
    ],
  },
];

/** Flips one byte at each offset (or writes `len` new bytes there) and moves the mtime on. */
function edit(file: string, offsets: number[], len: number, mtime: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    for (const o of offsets) {
      const b = len === 1 ? Buffer.alloc(1) : randomBytes(len);
      if (len === 1) {
        fs.readSync(fd, b, 0, 1, o);
        b[0] ^= 0xff;
      }
      fs.writeSync(fd, b, 0, len, o);
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.utimesSync(file, mtime, mtime);
}

interface Cell {
  workload: string;
  direction: 'up' | 'down';
  data: Dataset;
  /** The working copy every tool syncs from (changed each round). */
  src: string;
  change(round: number): void;
}

export interface ResyncOptions {
  condition: string;
  route: ResyncRoute;
  /** argv prefix every tool runs under (the WAN's client namespace). */
  prefix: string[];
  /** Counts the bytes through `route` (loopback only). */
  proxy?: CountingProxy;
  reps: number;
  timed: Timed;
  work: string;
  tree?: Dataset;
  big?: Dataset;
}

/** A working copy of a dataset (its own, since the cells change it). */
function workingCopy(data: Dataset, work: string, name: string): string {
  const p = path.join(work, name);
  fs.rmSync(p, { recursive: true, force: true });
  execFileSync('cp', ['-a', data.path, p]);
  return p;
}

export async function resyncCondition(o: ResyncOptions): Promise<Measurement[]> {
  fs.mkdirSync(o.work, { recursive: true });
  const cells: Cell[] = [];
  // Seconds only move forward: each round's edits get a new mtime, as an editor's would.
  let clock = Math.floor(Date.now() / 1000) + 10;
  if (o.tree) {
    const tree = o.tree;
    const src = workingCopy(tree, o.work, 'tree');
    const files: string[] = [];
    for (const e of fs.readdirSync(src, { recursive: true }) as string[])
      if (path.basename(e).startsWith('f')) files.push(path.join(src, e));
    files.sort();
    const label = `${tree.files.toLocaleString('en')} x 64 KiB`;
    cells.push(
      { workload: `unchanged ${label} upload`, direction: 'up', data: tree, src, change: () => {} },
      { workload: `unchanged ${label} download`, direction: 'down', data: tree, src, change: () => {} },
      {
        workload: `100 of ${label} edited (1 byte each) upload`,
        direction: 'up',
        data: tree,
        src,
        change: (round) => {
          clock += 2;
          for (let i = 0; i < 100; i++) {
            const f = files[(i * 97 + round * 13) % files.length];
            edit(f, [(i * 641 + round) % (64 << 10)], 1, clock);
          }
        },
      },
    );
  }
  if (o.big) {
    const big = o.big;
    // The file is synced as a directory holding it (sync's unit is a tree).
    const src = path.join(o.work, 'big');
    fs.rmSync(src, { recursive: true, force: true });
    fs.mkdirSync(src);
    execFileSync('cp', ['-a', big.path, src]);
    const file = path.join(src, path.basename(big.path));
    cells.push({
      workload: `${big.name}, 16 scattered 4 KiB edits upload`,
      direction: 'up',
      data: big,
      src,
      change: (round) => {
        clock += 2;
        const stride = Math.floor(big.bytes / 16);
        const offsets = Array.from({ length: 16 }, (_, i) => i * stride + 12_345 + round * 40_961);
        edit(file, offsets, 4096, clock);
      },
    });
  }
  const out: Measurement[] = [];
  for (const [c, cell] of cells.entries()) {
    const runs = new Map<
      string,
      { times: number[]; cpu: number[]; wire: { sent: number; received: number }[]; errors: string[] }
    >();
    const dst = (t: ResyncTool) => path.join(o.work, `dst-${c}-${t.peer ? 'rsync' : 'bcmr'}`);
    for (const t of TOOLS) {
      fs.rmSync(dst(t), { recursive: true, force: true });
      execFileSync('cp', ['-a', cell.src, dst(t)]);
      runs.set(t.name, { times: [], cpu: [], wire: [], errors: [] });
    }
    for (let r = 0; r < o.reps; r++) {
      cell.change(r);
      const want = await digestOf(cell.src);
      for (const t of TOOLS) {
        const rec = runs.get(t.name) as NonNullable<ReturnType<typeof runs.get>>;
        // Down: the "remote" source is the working copy, the local destination the tool's.
        const argv = t.argv(o.route, cell.direction, cell.src, dst(t));
        try {
          o.proxy?.take();
          const { wall, cpu } = await o.timed(argv, o.prefix);
          const wire = o.proxy?.take();
          if ((await digestOf(dst(t))) !== want) throw new Error('copy differs from the source (BLAKE3)');
          rec.times.push(wall);
          if (cpu !== null) rec.cpu.push(cpu);
          if (wire) rec.wire.push(wire);
          process.stderr.write(
            `${o.condition} | ${cell.workload} | ${t.name} | ${wall.toFixed(2)} s, CPU ${cpu?.toFixed(2) ?? '?'} s${wire ? `, wire ${wire.sent} / ${wire.received} B` : ''}\n`,
          );
        } catch (err) {
          rec.errors.push((err as Error).message);
          process.stderr.write(
            `${o.condition} | ${cell.workload} | ${t.name} | FAILED ${(err as Error).message}\n`,
          );
        }
      }
    }
    for (const t of TOOLS) {
      const rec = runs.get(t.name) as NonNullable<ReturnType<typeof runs.get>>;
      out.push({
        condition: o.condition,
        workload: cell.workload,
        bytes: cell.data.bytes,
        files: cell.data.files,
        tool: t.name,
        peer: t.peer,
        times: rec.times,
        cpu: rec.cpu,
        wire: rec.wire.length ? rec.wire : undefined,
        errors: rec.errors,
      });
      fs.rmSync(dst(t), { recursive: true, force: true });
    }
  }
  fs.rmSync(o.work, { recursive: true, force: true });
  return out;
}
