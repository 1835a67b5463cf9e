/**
 * The `fanout` condition (issue 26): one file to three hosts. `bcmr copy --to` (all three at
 * once, one command) against three `bcmr copy` one after another and three `scp`, on loopback
 * (three host aliases of the harness's sshd) and over the WAN path when it can be built, where
 * each stream is bound by its window and round trip, and doing the three at once is the point.
 * Every destination is checked with BLAKE3 after every run. The three hosts share one server
 * and so one dedup store: it is emptied before every copy (three real hosts would not hold each
 * other's blocks), or a second copy in turn would send block hashes only.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Dataset, digestOf } from './datasets.js';
import type { Measurement } from './report.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, '../../bin/bcmr.js');

type Timed = (argv: string[], prefix: string[]) => Promise<{ wall: number; cpu: number | null }>;

export interface FanOutOptions {
  condition: string;
  /** Three host aliases reaching the same server, and its ssh config / rsh. */
  hosts: [string, string, string];
  config: string;
  rsh: string;
  /** The server's dedup store, emptied before each copy. */
  cas: string;
  prefix: string[];
  reps: number;
  timed: Timed;
  work: string;
  big: Dataset;
}

interface FanTool {
  name: string;
  peer: boolean;
  argv(o: FanOutOptions, dsts: string[]): string[];
}

const bcmrCopy = (o: FanOutOptions, host: string, dst: string) =>
  `${process.execPath} ${BIN} copy --progress off --rsh '${o.rsh}' ${o.big.path} ${host}:${dst}`;

const TOOLS: FanTool[] = [
  {
    name: 'bcmr --to x3',
    peer: false,
    argv: (o, dsts) => [
      process.execPath,
      BIN,
      'copy',
      '--progress',
      'off',
      '--rsh',
      o.rsh,
      o.big.path,
      ...o.hosts.flatMap((h, i) => ['--to', `${h}:${dsts[i]}`]),
    ],
  },
  {
    name: 'bcmr x3 in turn',
    peer: false,
    argv: (o, dsts) => [
      'sh',
      '-c',
      o.hosts.map((h, i) => `rm -rf '${o.cas}' && ${bcmrCopy(o, h, dsts[i])}`).join(' && '),
    ],
  },
  {
    name: 'scp x3 in turn',
    peer: true,
    argv: (o, dsts) => [
      'sh',
      '-c',
      o.hosts.map((h, i) => `scp -q -F ${o.config} ${o.big.path} ${h}:${dsts[i]}`).join(' && '),
    ],
  },
];

export async function fanOutCondition(o: FanOutOptions): Promise<Measurement[]> {
  fs.mkdirSync(o.work, { recursive: true });
  const want = await digestOf(o.big.path);
  const runs = new Map(
    TOOLS.map((t) => [t.name, { times: [] as number[], cpu: [] as number[], errors: [] as string[] }]),
  );
  const workload = `${o.big.name} to 3 hosts`;
  for (let r = 0; r < o.reps; r++) {
    for (const t of TOOLS) {
      const rec = runs.get(t.name) as { times: number[]; cpu: number[]; errors: string[] };
      const dsts = o.hosts.map((_, i) => path.join(o.work, `dst${i}.bin`));
      for (const d of dsts) fs.rmSync(d, { force: true });
      fs.rmSync(o.cas, { recursive: true, force: true });
      try {
        const { wall, cpu } = await o.timed(t.argv(o, dsts), o.prefix);
        for (const d of dsts)
          if ((await digestOf(d)) !== want) throw new Error(`${d} differs from the source (BLAKE3)`);
        rec.times.push(wall);
        if (cpu !== null) rec.cpu.push(cpu);
        process.stderr.write(
          `${o.condition} | ${workload} | ${t.name} | ${wall.toFixed(2)} s, CPU ${cpu?.toFixed(2) ?? '?'} s\n`,
        );
      } catch (err) {
        rec.errors.push((err as Error).message);
        process.stderr.write(`${o.condition} | ${workload} | ${t.name} | FAILED ${(err as Error).message}\n`);
      }
      for (const d of dsts) fs.rmSync(d, { force: true });
    }
  }
  fs.rmSync(o.work, { recursive: true, force: true });
  return TOOLS.map((t) => {
    const rec = runs.get(t.name) as { times: number[]; cpu: number[]; errors: string[] };
    return {
      condition: o.condition,
      workload,
      bytes: o.big.bytes * 3,
      files: 3,
      tool: t.name,
      peer: t.peer,
      times: rec.times,
      cpu: rec.cpu,
      errors: rec.errors,
    };
  });
}
