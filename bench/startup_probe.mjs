// Startup probe (issues 14, 16): the fixed cost of a copy. `bcmr --version` and 1-byte copies
// both ways through the test harness's sshd: installed bcmr on the remote, the zero-install
// bundle (first send and cached), the fallback (after the first copy, which remembers the host);
// --keep-ssh (a warm master after the first run); scp for scale. 7 runs each, interleaved;
// medians of wall ms.
// Run: node bench/startup_probe.mjs (after npm run build).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSshd } from '../dist/test/harness/sshd.js';

const sshd = await startSshd({ serveLog: false });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bcmr-startup-'));
fs.writeFileSync(`${dir}/one.txt`, 'x');
const bin = new URL('../bin/bcmr.js', import.meta.url).pathname;
const env = { ...process.env, BCMR_RSH: sshd.rsh, XDG_CACHE_HOME: path.join(dir, 'cache') };
const time = (file, args) => {
  const t0 = performance.now();
  const r = spawnSync(file, args, { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')}: ${r.stderr}`);
  return performance.now() - t0;
};
const cli = (args) => time(process.execPath, [bin, ...args]);
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = {};
const add = (k, v) => (rows[k] ??= []).push(v);
const config = sshd.sshArgv[2];
for (let i = 0; i < 7; i++) {
  add('--version', cli(['--version']));
  add('1 byte up, installed', cli(['copy', '-f', `${dir}/one.txt`, `bcmr-test:${dir}/up.txt`]));
  add('1 byte down, installed', cli(['copy', '-f', `bcmr-test:${dir}/one.txt`, `${dir}/down.txt`]));
  fs.rmSync(`${sshd.home}/.cache/bcmr`, { recursive: true, force: true });
  add('1 byte up, bundle first send', cli(['copy', '-f', `${dir}/one.txt`, `bcmr-bare:${dir}/b.txt`]));
  add('1 byte up, bundle cached', cli(['copy', '-f', `${dir}/one.txt`, `bcmr-bare:${dir}/b.txt`]));
  add('1 byte up, fallback', cli(['copy', '-f', `${dir}/one.txt`, `bcmr-nonode:${dir}/f.txt`]));
  add('1 byte down, fallback', cli(['copy', '-f', `bcmr-nonode:${dir}/one.txt`, `${dir}/f2.txt`]));
  add('1 byte up, installed, --keep-ssh (warm)', cli(['copy', '-f', '--keep-ssh', '30', `${dir}/one.txt`, `bcmr-test:${dir}/k.txt`]));
  add('1 byte up, scp', time('scp', ['-q', '-F', config, `${dir}/one.txt`, `bcmr-test:${dir}/s.txt`]));
  add('1 byte down, scp', time('scp', ['-q', '-F', config, `bcmr-test:${dir}/one.txt`, `${dir}/s2.txt`]));
}
console.log(`| what | median ms | runs (ms) |\n|---|---:|---|`);
for (const [k, v] of Object.entries(rows)) console.log(`| ${k} | ${med(v).toFixed(0)} | ${v.map((x) => x.toFixed(0)).join(', ')} |`);
// The kept master (the first --keep-ssh run made it; the 6 others went through it) ends now.
for (const s of fs.readdirSync(path.join(dir, 'cache/bcmr/ssh')))
  spawnSync('ssh', ['-o', `ControlPath=${path.join(dir, 'cache/bcmr/ssh', s)}`, '-O', 'exit', 'x']);
await sshd.stop();
fs.rmSync(dir, { recursive: true, force: true });
