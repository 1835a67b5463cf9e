// Startup probe (issue 14): 1-byte uploads through the test harness's sshd with an installed
// bcmr, the server bundle (first send and cached) on the system Node, the plain-ssh fallback,
// and scp; 5 runs each, interleaved. Run: node bench/startup_probe.mjs (after npm run build).
import { startSshd } from '../dist/test/harness/sshd.js';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
const sshd = await startSshd({ serveLog: false });
const dir = fs.mkdtempSync('/tmp/bcmr-measure-');
fs.writeFileSync(`${dir}/one.txt`, 'x');
const bin = new URL('../bin/bcmr.js', import.meta.url).pathname;
const node = process.execPath;
const time = (args, env = {}) => {
  const t0 = performance.now();
  const r = spawnSync(node, [bin, ...args], { env: { ...process.env, BCMR_RSH: sshd.rsh, ...env }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return performance.now() - t0;
};
const med = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cache = `${sshd.home}/.cache/bcmr`;
const rows = { installed: [], bundleCached: [], bundleFirst: [], fallback: [], scp: [], version: [] };
for (let i = 0; i < 5; i++) {
  rows.version.push(time(['--version']));
  rows.installed.push(time(['copy', '-f', `${dir}/one.txt`, `bcmr-test:${dir}/i.txt`]));
  fs.rmSync(cache, { recursive: true, force: true });
  rows.bundleFirst.push(time(['copy', '-f', `${dir}/one.txt`, `bcmr-bare:${dir}/b.txt`]));
  rows.bundleCached.push(time(['copy', '-f', `${dir}/one.txt`, `bcmr-bare:${dir}/b.txt`]));
  rows.fallback.push(time(['copy', '-f', '--remote-path', 'nope', `${dir}/one.txt`, `bcmr-test:${dir}/f.txt`]));
  const t0 = performance.now();
  execFileSync('scp', ['-q', '-F', sshd.rsh.split(' ')[2], `${dir}/one.txt`, `bcmr-test:${dir}/s.txt`]);
  rows.scp.push(performance.now() - t0);
}
for (const [k, v] of Object.entries(rows)) console.log(`${k}: median ${med(v).toFixed(0)} ms of ${v.map((x) => x.toFixed(0)).join(', ')}`);
await sshd.stop();
fs.rmSync(dir, { recursive: true, force: true });
