/**
 * A before/after table of two benchmark runs: for every cell (condition, workload, tool) that
 * both measured, the median wall time and whole-machine CPU of each, and bcmr's ratio to the
 * peers measured in the same run (the ratio is what compares across runs on a shared machine:
 * the machine itself is faster or slower from one day to the next).
 *
 * Run: node dist/bench/compare.js --before A.json[,B.json...] --after C.json[,D.json...]
 *      [--tools 'bcmr -P 1,scp,rsync -a'] > table.md
 */
import { readFileSync } from 'node:fs';
import { type Measurement, median } from './report.js';

const opt = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

function load(list: string | undefined): Map<string, Measurement> {
  const out = new Map<string, Measurement>();
  for (const file of (list ?? '').split(',').filter(Boolean)) {
    const j = JSON.parse(readFileSync(file, 'utf8')) as { measurements: Measurement[] };
    // A later file's cell replaces an earlier one's: list the files oldest first.
    for (const m of j.measurements)
      if (m.times.length > 0) out.set(`${m.condition} | ${m.workload} | ${m.tool}`, m);
  }
  return out;
}

const before = load(opt('--before'));
const after = load(opt('--after'));
const tools = (opt('--tools') ?? '').split(',').filter(Boolean);

/** The peer each target names: tar|ssh for the fallback, raw TCP on a WAN file, rsync for trees, else scp. */
function peerFor(m: Measurement): string {
  if (m.condition.startsWith('fallback')) return 'tar | ssh | tar';
  if (m.condition.startsWith('WAN') && !m.workload.includes('files')) return 'raw TCP, 4 streams';
  if (m.workload.includes('files')) return 'rsync -a';
  return 'scp';
}

/** bcmr's wall and CPU over the peer's in the same run, when both are there. */
function ratio(set: Map<string, Measurement>, cell: Measurement, peer: string): string {
  const p = set.get(`${cell.condition} | ${cell.workload} | ${peer}`);
  const c = set.get(`${cell.condition} | ${cell.workload} | ${cell.tool}`);
  if (!p || !c) return '-';
  const cpu = c.cpu && p.cpu ? (median(c.cpu) / median(p.cpu)).toFixed(2) : '-';
  return `${(median(c.times) / median(p.times)).toFixed(2)} / ${cpu}`;
}

const fmt = (m: Measurement | undefined): string =>
  m ? `${median(m.times).toFixed(2)} (${m.cpu ? median(m.cpu).toFixed(2) : '-'})` : '-';

const rss = (m: Measurement | undefined): string =>
  m?.rssClient && m.rssClient.length > 0 ? Math.round(Math.max(...m.rssClient)).toString() : '-';

/** A name as a table cell: its own pipes escaped (`tar | ssh | tar`). */
const cell = (s: string): string => s.replaceAll('|', '\\|');

const lines = [
  '| condition, workload | tool | before s (CPU s) | after s (CPU s) | vs peer before (wall / CPU) | vs peer after | peer | peak RSS MB before / after |',
  '|---|---|---:|---:|---:|---:|---|---:|',
];
for (const [key, a] of after) {
  if (!a.tool.startsWith('bcmr') || (tools.length > 0 && !tools.includes(a.tool))) continue;
  const b = before.get(key);
  if (!b) continue;
  const peer = after.has(`${a.condition} | ${a.workload} | ${peerFor(a)}`) ? peerFor(a) : '';
  lines.push(
    `| ${cell(`${a.condition}, ${a.workload}`)} | ${cell(a.tool)} | ${fmt(b)} | ${fmt(a)} | ${peer ? ratio(before, b, peer) : '-'} | ${peer ? ratio(after, a, peer) : '-'} | ${cell(peer) || '-'} | ${rss(b)} / ${rss(a)} |`,
  );
}
process.stdout.write(`${lines.join('\n')}\n`);
