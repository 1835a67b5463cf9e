/**
 * Benchmark output: raw runs as JSON, a Markdown table (median, spread, ratios to scp and to
 * the best peer, CPU per GiB and per 1,000 files, peak RSS, the issue's targets), and three SVG
 * charts drawn with ECharts' server-side SVG renderer (time and whole-machine CPU relative to
 * the best peer per workload; bcmr's -P N scaling).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as echarts from 'echarts';

export interface Measurement {
  condition: string;
  workload: string;
  bytes: number;
  files: number;
  tool: string;
  peer: boolean;
  /** Seconds of the runs that succeeded and were verified. */
  times: number[];
  /** Whole-machine busy CPU seconds of the same runs (absent in runs before 2026-12-02). */
  cpu?: number[];
  /** Peak RSS (MB) of the bcmr client and of its remote server, per run (bcmr rows only). */
  rssClient?: number[];
  rssServer?: number[];
  /** Bytes each run sent and received on the wire, where counted (the resync condition). */
  wire?: { sent: number; received: number }[];
  errors: string[];
}

export interface ReportInfo {
  quick: boolean;
  reps: number;
  base: string;
  notes: string[];
  textZstdRatio: number;
  /** Dedup, resume and --sync figures (name -> value). */
  features?: Record<string, string>;
  /** Set for a run of only some conditions: names the files, and latest.md is left alone. */
  label?: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.resolve(here, '../../bench/results');

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const key = (m: Measurement) => `${m.condition} | ${m.workload}`;

function groups(ms: readonly Measurement[]): Map<string, Measurement[]> {
  const g = new Map<string, Measurement[]>();
  for (const m of ms) g.set(key(m), [...(g.get(key(m)) ?? []), m]);
  return g;
}

function bestPeer(rows: readonly Measurement[]): Measurement | null {
  const peers = rows.filter((r) => r.peer && r.times.length > 0);
  return peers.sort((a, b) => median(a.times) - median(b.times))[0] ?? null;
}

function find(
  ms: readonly Measurement[],
  condition: string,
  workload: RegExp,
  tool: string,
): Measurement | undefined {
  return ms.find(
    (m) => m.condition === condition && workload.test(m.workload) && m.tool === tool && m.times.length > 0,
  );
}

function targets(ms: readonly Measurement[], info: ReportInfo): string[] {
  const lines = ['| target | measured | met |', '|---|---|---|'];
  const ratio = (a?: Measurement, b?: Measurement) =>
    a && b ? median(a.times) / median(b.times) : Number.NaN;
  const row = (what: string, value: number, ok: boolean, shown = value.toFixed(2)) =>
    lines.push(
      `| ${what.replaceAll('|', '\\|')} | ${Number.isNaN(value) ? 'n/a' : shown} | ${Number.isNaN(value) ? 'n/a' : ok ? 'yes' : '**no**'} |`,
    );
  for (const dir of ['upload', 'download']) {
    const big = new RegExp(`random file ${dir}`);
    row(
      `random file ${dir}: bcmr -P 1 / scp <= 0.9`,
      ratio(find(ms, 'loopback', big, 'bcmr -P 1'), find(ms, 'loopback', big, 'scp')),
      ratio(find(ms, 'loopback', big, 'bcmr -P 1'), find(ms, 'loopback', big, 'scp')) <= 0.9,
    );
    const small = new RegExp(`files ${dir}`);
    const b = find(ms, 'loopback', small, 'bcmr -P 1');
    row(
      `small files ${dir}: bcmr -P 1 / rsync -a <= 1.0`,
      ratio(b, find(ms, 'loopback', small, 'rsync -a')),
      ratio(b, find(ms, 'loopback', small, 'rsync -a')) <= 1,
    );
    row(
      `small files ${dir}: bcmr -P 1 / scp -r <= 0.5`,
      ratio(b, find(ms, 'loopback', small, 'scp')),
      ratio(b, find(ms, 'loopback', small, 'scp')) <= 0.5,
    );
    const lat = ms.find((m) => m.condition.endsWith('RTT'))?.condition ?? '';
    const bl = find(ms, lat, small, 'bcmr -P 1');
    row(
      `small files ${dir} over ${lat || 'latency'}: bcmr -P 1 / rsync -a <= 1.0`,
      ratio(bl, find(ms, lat, small, 'rsync -a')),
      ratio(bl, find(ms, lat, small, 'rsync -a')) <= 1,
    );
    const s1 = find(ms, 'loopback', small, 'bcmr -P 1');
    const s4 = find(ms, 'loopback', small, 'bcmr -P 4');
    row(`small files ${dir}: speed-up -P 1 -> -P 4 >= 1.5`, ratio(s1, s4), ratio(s1, s4) >= 1.5);
    const l4 = ratio(bl, find(ms, lat, small, 'bcmr -P 4'));
    row(`(also) small files ${dir} over ${lat || 'latency'}: speed-up -P 1 -> -P 4 >= 1.5`, l4, l4 >= 1.5);
  }
  for (const dir of ['upload', 'download']) {
    const big = new RegExp(`random file ${dir}`);
    const scp = find(ms, 'loopback', big, 'scp');
    const direct = ms
      .filter((m) => m.condition === 'loopback' && big.test(m.workload) && m.tool.endsWith('--direct=direct'))
      .filter((m) => m.times.length > 0)
      .sort((a, b) => median(a.times) - median(b.times))[0];
    const speed = ratio(scp, direct);
    row(
      `random file ${dir}: speed-up of bcmr --direct=direct (${direct?.tool.replace(' --direct=direct', '') ?? 'best -P'}) over scp >= 4`,
      speed,
      speed >= 4,
    );
    const striped = ratio(find(ms, 'loopback', big, 'bcmr -P 1'), find(ms, 'loopback', big, 'bcmr -P 4'));
    row(`random file ${dir}: speed-up -P 1 -> -P 4 striped over ssh >= 1.5`, striped, striped >= 1.5);
  }
  // Issue 16: whole-machine CPU against the peers, the tar stream, and each bcmr process's RSS.
  const cpuRatio = (a?: Measurement, b?: Measurement) =>
    a?.cpu?.length && b?.cpu?.length ? median(a.cpu) / median(b.cpu) : Number.NaN;
  for (const dir of ['upload', 'download']) {
    const big = new RegExp(`random file ${dir}`);
    const c = cpuRatio(find(ms, 'loopback', big, 'bcmr -P 1'), find(ms, 'loopback', big, 'scp'));
    row(`random file ${dir}: CPU bcmr -P 1 / scp <= 1.0`, c, c <= 1);
    const small = new RegExp(`files ${dir}`);
    const b = find(ms, 'loopback', small, 'bcmr -P 1');
    const cr = cpuRatio(b, find(ms, 'loopback', small, 'rsync -a'));
    row(`small files ${dir}: CPU bcmr -P 1 / rsync -a <= 1.0`, cr, cr <= 1);
    const tr = ratio(b, find(ms, 'loopback', small, 'tar | ssh | tar'));
    row(`small files ${dir}: bcmr -P 1 / tar | ssh | tar <= 1.2`, tr, tr <= 1.2);
  }
  // Issue 17: the emulated 50 ms / 1 Gbit/s path, and -P auto against -P 1 on loopback.
  const wan = ms.find((m) => m.condition.startsWith('WAN 50'))?.condition ?? 'WAN 50 ms';
  for (const dir of ['upload', 'download']) {
    const big = new RegExp(`random file ${dir}`);
    const small = new RegExp(`files ${dir}`);
    const vsScp = (tool: string) => ratio(find(ms, wan, big, tool), find(ms, wan, big, 'scp'));
    const d1 = vsScp('bcmr -P 1 --direct=direct');
    row(`${wan}: random file ${dir}: --direct=direct -P 1 / scp <= 0.7`, d1, d1 <= 0.7);
    for (const tool of ['bcmr -P 4', 'bcmr -P 4 --direct=direct']) {
      const r = vsScp(tool);
      row(`${wan}: random file ${dir}: ${tool} / scp <= 0.4`, r, r <= 0.4);
    }
    const auto = vsScp('bcmr -P auto --direct auto');
    row(`${wan}: random file ${dir}: -P auto --direct auto / scp <= 0.35`, auto, auto <= 0.35);
    const many = ratio(find(ms, wan, small, 'bcmr -P auto'), find(ms, wan, small, 'rsync -a'));
    row(`${wan}: small files ${dir}: -P auto / rsync -a <= 0.35`, many, many <= 0.35);
    for (const [kind, re] of [
      ['random file', big],
      ['small files', small],
    ] as const) {
      const lo = ratio(
        find(ms, 'loopback', re, 'bcmr -P auto --direct auto'),
        find(ms, 'loopback', re, 'bcmr -P 1'),
      );
      row(`loopback: ${kind} ${dir}: -P auto --direct auto / -P 1 <= 1.05`, lo, lo <= 1.05);
    }
  }
  // Issue 25: re-runs against rsync -a at its own game (the resync condition).
  for (const m of ms.filter((x) => x.condition.startsWith('resync') && x.tool === 'bcmr sync')) {
    const peer = ms.find(
      (x) => x.condition === m.condition && x.workload === m.workload && x.tool === 'rsync -a',
    );
    const limit = m.condition.includes('WAN') ? 0.7 : 1.0;
    const r = m.times.length && peer?.times.length ? median(m.times) / median(peer.times) : Number.NaN;
    row(`${m.condition}: ${m.workload}: bcmr sync / rsync -a <= ${limit}`, r, r <= limit);
    if (/GiB/.test(m.workload) && m.wire?.length) {
      const share = (median(m.wire.map((w) => w.sent + w.received)) / m.bytes) * 100;
      row(
        `${m.condition}: ${m.workload}: bytes on the wire < 1 % of the file`,
        share,
        share < 1,
        `${share.toFixed(3)} %`,
      );
    }
  }
  const rss = ms.flatMap((m) => [...(m.rssClient ?? []), ...(m.rssServer ?? [])]);
  const topRss = rss.length ? Math.max(...rss) : Number.NaN;
  row('peak RSS of any bcmr process (MB) <= 150', topRss, topRss <= 150, topRss.toFixed(0));
  const t = /text upload/;
  const speedup = ratio(find(ms, '10 MB/s', t, 'scp'), find(ms, '10 MB/s', t, 'bcmr -P 1'));
  row(
    `text over 10 MB/s: speed-up over scp >= 0.85 x zstd ratio (${info.textZstdRatio.toFixed(2)})`,
    speedup,
    speedup >= 0.85 * info.textZstdRatio,
    `${speedup.toFixed(2)} (needs ${(0.85 * info.textZstdRatio).toFixed(2)})`,
  );
  return lines;
}

function markdown(ms: readonly Measurement[], info: ReportInfo, date: string): string {
  const cpu = os.cpus()[0]?.model ?? os.arch();
  // `ssh -V` prints its version on stderr.
  const v = spawnSync('ssh', ['-V'], { encoding: 'utf8' });
  const sshVersion = `${v.stderr ?? ''}${v.stdout ?? ''}`.trim() || 'ssh version unknown';
  const out = [
    `# bcmr benchmark, ${date.slice(0, 10)} on ${os.hostname()}${info.quick ? ' (quick)' : ''}`,
    '',
    `${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, ${sshVersion}. Client and server on this machine, through the test harness's sshd; scratch ${info.base}; median of ${info.reps} run(s), tools interleaved, page cache warmed; every copy checked with BLAKE3.`,
    '',
  ];
  for (const [k, rows] of groups(ms)) {
    const scp = rows.find((r) => r.tool === 'scp' && r.times.length > 0);
    const best = bestPeer(rows);
    const hasWire = rows.some((r) => r.wire?.length);
    out.push(
      `## ${k}`,
      '',
      `| tool | median s | spread s | MB/s | files/s | vs scp | vs best peer | CPU s | CPU s/GiB | CPU s/1k files | CPU vs scp | CPU vs best peer | peak RSS MB client / server | failed runs |${hasWire ? ' on the wire kB sent / received |' : ''}`,
      `|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|${hasWire ? '---:|' : ''}`,
    );
    for (const r of rows) {
      const m = median(r.times);
      const spread = r.times.length
        ? `${Math.min(...r.times).toFixed(2)}-${Math.max(...r.times).toFixed(2)}`
        : '';
      const ok = r.times.length > 0;
      const cpu = r.cpu?.length ? median(r.cpu) : Number.NaN;
      const scpCpu = scp?.cpu?.length ? median(scp.cpu) : Number.NaN;
      const bestCpu = best?.cpu?.length ? median(best.cpu) : Number.NaN;
      const num = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '');
      const perGiB = num(cpu / (r.bytes / 2 ** 30));
      const perKFiles = r.files > 1 ? num(cpu / (r.files / 1000)) : '';
      out.push(
        `| ${r.tool.replaceAll('|', '\\|')} | ${ok ? m.toFixed(2) : 'failed'} | ${spread} | ${ok ? (r.bytes / 1e6 / m).toFixed(0) : ''} | ${ok && r.files > 1 ? (r.files / m).toFixed(0) : ''} | ${ok && scp ? (m / median(scp.times)).toFixed(2) : ''} | ${ok && best ? `${(m / median(best.times)).toFixed(2)}${best === r ? ' (best peer)' : ''}` : ''} | ${num(cpu)} | ${perGiB} | ${perKFiles} | ${num(cpu / scpCpu)} | ${num(cpu / bestCpu)} | ${rssCell(r)} | ${r.errors.length ? `${r.errors.length}: ${r.errors[0]}` : ''} |${hasWire ? ` ${wireCell(r)} |` : ''}`,
      );
    }
    out.push('');
  }
  out.push('## Targets', '', ...targets(ms, info), '');
  const f = Object.entries(info.features ?? {});
  if (f.length)
    out.push(
      '## Dedup, resume, --sync, direct-plane ceilings',
      '',
      '| figure | value |',
      '|---|---|',
      ...f.map(([k, v]) => `| ${k} | ${v} |`),
      '',
    );
  if (info.notes.length) out.push('## Notes', '', ...info.notes.map((n) => `- ${n}`), '');
  return `${out.join('\n')}\n`;
}

/** Median kB sent / received on the wire per run, or '' where not counted. */
function wireCell(r: Measurement): string {
  if (!r.wire?.length) return '';
  const kb = (xs: number[]) => (median(xs) / 1000).toFixed(0);
  return `${kb(r.wire.map((w) => w.sent))} / ${kb(r.wire.map((w) => w.received))}`;
}

/** `client / server` peak RSS (MB, the largest of the runs), or '' for tools not measured. */
function rssCell(r: Measurement): string {
  const top = (xs?: number[]) => (xs?.length ? Math.max(...xs).toFixed(0) : '-');
  return r.rssClient?.length || r.rssServer?.length ? `${top(r.rssClient)} / ${top(r.rssServer)}` : '';
}

function svg(option: echarts.EChartsCoreOption, width: number, height: number): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  chart.setOption({ animation: false, backgroundColor: '#fff', ...option });
  const s = chart.renderToSVGString();
  chart.dispose();
  return s;
}

/** Medians of a metric relative to the best peer's, one bar per tool and workload. */
function relativeChart(
  ms: readonly Measurement[],
  title: string,
  metric: (m: Measurement) => number[] | undefined,
): string {
  const g = [...groups(ms)];
  const tools = [...new Set(ms.map((m) => m.tool))];
  const series = tools.map((tool) => ({
    name: tool,
    type: 'bar',
    data: g.map(([, rows]) => {
      const r = rows.find((x) => x.tool === tool && x.times.length > 0);
      const best = bestPeer(rows);
      const mine = r ? metric(r) : undefined;
      const theirs = best ? metric(best) : undefined;
      return mine?.length && theirs?.length ? Number((median(mine) / median(theirs)).toFixed(3)) : null;
    }),
  }));
  return svg(
    {
      title: { text: title, left: 'center' },
      legend: { top: 28, type: 'plain' },
      grid: { top: 110, bottom: 150, left: 60, right: 20 },
      xAxis: {
        type: 'category',
        data: g.map(([k]) => k),
        axisLabel: { rotate: 30, interval: 0, fontSize: 10 },
      },
      yAxis: { type: 'value', name: 'x best peer' },
      series,
    },
    Math.max(900, g.length * 140),
    560,
  );
}

function scalingChart(ms: readonly Measurement[]): string {
  const ns = [1, 2, 4, 8];
  const cell = (m: Measurement) => `${m.condition} | ${m.workload}`;
  const cells = [...new Set(ms.filter((m) => m.files > 1 && m.tool.startsWith('bcmr -P')).map(cell))];
  return svg(
    {
      title: { text: 'bcmr -P N on many small files (2 cores)', left: 'center' },
      legend: { bottom: 0 },
      grid: { top: 50, bottom: 90, left: 70, right: 40 },
      xAxis: { type: 'category', name: 'N', data: ns.map(String) },
      yAxis: { type: 'value', name: 'files/s' },
      series: cells.map((c) => ({
        name: c,
        type: 'line',
        connectNulls: true,
        data: ns.map((n) => {
          const r = ms.find((m) => cell(m) === c && m.tool === `bcmr -P ${n}` && m.times.length > 0);
          return r ? Math.round(r.files / median(r.times)) : null;
        }),
      })),
    },
    900,
    460,
  );
}

export function writeReport(ms: readonly Measurement[], info: ReportInfo): void {
  const date = new Date().toISOString();
  const stem = `${date.slice(0, 10)}-${os.hostname()}${info.quick ? '-quick' : ''}${info.label ? `-${info.label}` : ''}`;
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(
    path.join(RESULTS, `${stem}.json`),
    `${JSON.stringify({ date, host: os.hostname(), ...info, measurements: ms }, null, 1)}\n`,
  );
  const md = markdown(ms, info, date);
  const charts = `![times](${stem}-times.svg)\n\n![cpu](${stem}-cpu.svg)\n\n![scaling](${stem}-scaling.svg)\n`;
  writeFileSync(path.join(RESULTS, `${stem}.md`), `${md}\n${charts}`);
  writeFileSync(
    path.join(RESULTS, `${stem}-times.svg`),
    relativeChart(ms, 'Median time relative to the best peer (lower is better)', (m) => m.times),
  );
  writeFileSync(
    path.join(RESULTS, `${stem}-cpu.svg`),
    relativeChart(ms, 'Whole-machine CPU seconds relative to the best peer (lower is better)', (m) => m.cpu),
  );
  writeFileSync(path.join(RESULTS, `${stem}-scaling.svg`), scalingChart(ms));
  if (!info.label) {
    writeFileSync(
      path.join(RESULTS, `latest${info.quick ? '-quick' : ''}.md`),
      `Latest: [${stem}.md](${stem}.md)\n\n${md}\n${charts}`,
    );
  }
  process.stdout.write(md);
}
