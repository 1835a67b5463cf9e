/**
 * Background jobs through the real sshd, with the job store in a temporary XDG_STATE_HOME: -b
 * returns at once with an ID, `status` follows the job to done with its counts, a job killed
 * with -9 shows as interrupted, `--rm` and `--gc` remove finished jobs' files only.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { blake3Hex } from '../../src/codec/hash.js';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, jsonEvents } from './run.js';

let sshd: SshServer;
let dir: string;
let state: string;
let cleanup: () => Promise<void>;
const env = () => ({ XDG_STATE_HOME: state });
const run = (args: string[]) => bcmr(['--json', ...args], { cwd: dir, env: env() });
const data = randomBytes(6 << 20);

async function job(id: string): Promise<Record<string, unknown>> {
  const r = await run(['status', id]);
  const [e] = jsonEvents(r.stdout).filter((x) => x.event === 'job');
  assert.ok(e, r.stderr);
  return e;
}

/** Polls the job until `done(job)` or the deadline. */
async function until(id: string, done: (j: Record<string, unknown>) => boolean, ms = 30_000) {
  const end = Date.now() + ms;
  for (;;) {
    const j = await job(id);
    if (done(j)) return j;
    if (Date.now() > end) assert.fail(`job ${id} stayed ${JSON.stringify(j)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = await tempDir('bcmr-e2e-jobs-'));
  state = path.join(dir, 'state');
  fs.writeFileSync(path.join(dir, 'data.bin'), data);
});

after(async () => {
  await sshd?.stop();
  await cleanup?.();
});

const start = async (args: string[]) => {
  const r = await run(['copy', '-b', ...args, '--rsh', sshd.rsh]);
  assert.equal(r.code, 0, r.stderr);
  const [e] = jsonEvents(r.stdout).filter((x) => x.event === 'job');
  return String(e.id);
};

test('-b returns at once; status follows the job to done', async () => {
  const id = await start(['--bwlimit', '3M', 'data.bin', 'bcmr-test:bg.bin']);
  const running = await job(id);
  assert.equal(running.state, 'running', 'a 2 s copy is still running when -b has returned');
  const done = await until(id, (j) => j.state !== 'running');
  assert.equal(done.state, 'done', JSON.stringify(done));
  assert.deepEqual([done.files, done.totalFiles, done.bytes, done.exit], [1, 1, data.length, 0]);
  assert.equal(blake3Hex(fs.readFileSync(path.join(sshd.home, 'bg.bin'))), blake3Hex(data));
  const table = await bcmr(['status'], { cwd: dir, env: env() });
  assert.match(table.stdout, new RegExp(`^${id} +done .*1/1 files`, 'm'));
});

test('a job killed with -9 shows as interrupted; --rm and --gc remove only finished jobs', async () => {
  const id = await start(['--bwlimit', '1M', 'data.bin', 'bcmr-test:killed.bin']);
  const j = await until(id, (x) => x.state === 'running' && Number(x.pid) > 0);
  process.kill(Number(j.pid), 'SIGKILL');
  const gone = await until(id, (x) => x.state !== 'running');
  assert.equal(gone.state, 'interrupted');
  assert.equal(fs.existsSync(path.join(sshd.home, 'killed.bin')), false, 'nothing under the final name');

  const running = await start(['--bwlimit', '1M', 'data.bin', 'bcmr-test:slow.bin']);
  const jobsDir = path.join(state, 'bcmr', 'jobs');
  // Everything but the running job is made 8 days old: --gc takes the finished ones only.
  const old = Date.now() / 1000 - 8 * 24 * 3600;
  for (const f of fs.readdirSync(jobsDir))
    if (!f.startsWith(running)) fs.utimesSync(path.join(jobsDir, f), old, old);
  assert.equal((await run(['status', '--rm', running])).code, 2, 'a running job is not removed');
  assert.equal((await run(['status', '--gc'])).code, 0);
  assert.deepEqual([...new Set(fs.readdirSync(jobsDir).map((f) => f.split('.')[0]))], [running]);
  const r = await job(running);
  process.kill(Number(r.pid), 'SIGKILL');
  await until(running, (x) => x.state !== 'running');
  assert.equal((await run(['status', '--rm', running])).code, 0);
  assert.deepEqual(fs.readdirSync(jobsDir), []);
});
