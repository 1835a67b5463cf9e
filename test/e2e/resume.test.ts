/**
 * -C through the real sshd: a download killed part way (client, or server) leaves only
 * `.NAME.bcmr-part`; the rerun keeps the verified prefix, fetches the rest, and the result is
 * bit-identical. A tampered partial file is caught at its first bad block.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, jsonEvents } from './run.js';

let sshd: SshServer;
let dir: string;
let cleanup: () => Promise<void>;
const MiB = 1 << 20;
const SIZE = 64 * MiB;
/**
 * Where to interrupt: anywhere from 8 to `max` MiB into the transfer, a new point each test.
 * When the client survives (ssh or server killed), at least 32 MiB must remain: the client
 * reads up to 16 MiB ahead of its disk writes, and a kill after the last byte reached it
 * interrupts nothing (the copy then rightly succeeds in one go).
 */
const SEED = Number(process.env.BCMR_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** mulberry32: the kill points replay exactly with BCMR_TEST_SEED. */
let state = SEED;
function random(): number {
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
// Printed with the test output, so a failing run can be replayed.
process.stderr.write(`resume tests: kill points from BCMR_TEST_SEED=${SEED}\n`);
const randomPoint = (max = 48) => (8 + Math.floor(random() * (max - 7))) * MiB;
const pointFor = (who: string) => randomPoint(who === 'client' ? 48 : 32);

before(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = await tempDir('bcmr-e2e-resume-'));
  const fd = fs.openSync(path.join(dir, 'src.bin'), 'w');
  for (let i = 0; i < SIZE / (4 * MiB); i++) fs.writeSync(fd, randomBytes(4 * MiB));
  fs.closeSync(fd);
});

after(async () => {
  await sshd?.stop();
  await cleanup?.();
});

const args = (dst: string, extra: string[] = []) => [
  'copy', '-C', '--compress', 'none', '--rsh', sshd.rsh, ...extra, `bcmr-test:${dir}/src.bin`, path.join(dir, dst),
]; // biome-ignore format: argv

/** Inverts one byte of `file` in place (tampering with a partial file). */
function flipByte(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, offset);
  b[0] ^= 0xff;
  fs.writeSync(fd, b, 0, 1, offset);
  fs.closeSync(fd);
}

/**
 * Waits until `part` holds `atLeast` bytes (checking that `final` never appears meanwhile),
 * then kill -9s the client (`pid`), its ssh child, or the remote server (from the serve log).
 */
async function killWhenPartHolds(
  part: string,
  atLeast: number,
  final: string,
  pid: number,
  who: 'client' | 'server' | 'ssh',
): Promise<void> {
  const deadline = Date.now() + 30_000;
  const holds = () => (fs.statSync(part, { throwIfNoEntry: false })?.size ?? 0) >= atLeast;
  while (Date.now() < deadline && !holds()) {
    assert.equal(fs.existsSync(final), false, 'never a partial file under the final name');
    await new Promise((r) => setTimeout(r, 5));
  }
  // A kill at the deadline instead would test nothing the title says.
  assert.ok(holds(), `the part file never reached ${atLeast} bytes within 30 s`);
  assert.equal(fs.existsSync(final), false, 'killed part way, before the copy completed');
  if (who === 'client') process.kill(pid, 'SIGKILL');
  else if (who === 'ssh') {
    const ssh = execFileSync('pgrep', ['-P', String(pid), '-x', 'ssh'], { encoding: 'utf8' })
      .trim()
      .split('\n')[0];
    process.kill(Number(ssh), 'SIGKILL');
  } else {
    const serverPid = Number(/^(\d+) session/m.exec(fs.readFileSync(sshd.serveLog, 'utf8'))?.[1]);
    process.kill(serverPid, 'SIGKILL');
  }
}

/**
 * Starts a -C copy to `dst` (a download unless `argv` says otherwise) and kills `who` once the
 * part file beside `dst` holds at least `atLeast` bytes.
 */
async function interrupted(
  dst: string,
  atLeast: number,
  who: 'client' | 'server' | 'ssh',
  argv: string[] = ['--json', ...args(dst)],
): Promise<Awaited<ReturnType<typeof bcmr>>> {
  const part = path.join(dir, `.${dst}.bcmr-part`);
  let pid = 0;
  fs.rmSync(sshd.serveLog, { force: true });
  const run = bcmr(argv, { onSpawn: (p) => (pid = p) });
  await killWhenPartHolds(part, atLeast, path.join(dir, dst), pid, who);
  const r = await run;
  if (who === 'client') {
    assert.notEqual(r.code, 0);
    assert.equal(fs.existsSync(path.join(dir, dst)), false, 'nothing under the final name');
    assert.ok(fs.statSync(part).size > 0, 'the partial file is kept for -C');
  }
  return r;
}

async function resumed(
  dst: string,
  earlier?: Awaited<ReturnType<typeof bcmr>>,
): Promise<Record<string, unknown>> {
  const r = earlier ?? (await bcmr(['--json', ...args(dst)]));
  assert.equal(r.code, 0, r.stderr);
  const [file] = jsonEvents(r.stdout).filter((e) => e.event === 'file');
  assert.ok(
    fs.readFileSync(path.join(dir, dst)).equals(fs.readFileSync(path.join(dir, 'src.bin'))),
    'bit-identical',
  );
  assert.equal(fs.existsSync(path.join(dir, `.${dst}.bcmr-part`)), false);
  return file;
}

for (const who of ['client', 'server', 'ssh'] as const) {
  const how = who === 'client' ? 'a rerun with -C' : 'the same run, retrying on a new connection,';
  test(`downloads: killed ${who} (kill -9), then ${how} fetches only what was missing`, async () => {
    const first = await interrupted(`${who}.bin`, pointFor(who), who);
    const file = await resumed(`${who}.bin`, who === 'client' ? undefined : first);
    assert.ok(
      Number(file.resumedFrom) >= 4 * MiB,
      `resumed from ${file.resumedFrom}: ${JSON.stringify(file)}; stderr: ${first.stderr}`,
    );
    assert.equal(Number(file.bytes) + Number(file.resumedFrom), SIZE);
  });
}

test('a tampered partial file restarts from its first bad block', async () => {
  await interrupted('tamper.bin', 24 * MiB, 'client');
  const part = path.join(dir, '.tamper.bin.bcmr-part');
  flipByte(part, 4 * MiB + 100);
  const file = await resumed('tamper.bin');
  assert.equal(file.resumedFrom, 4 * MiB);
});

const upArgs = (dst: string, json = false) => [
  ...(json ? ['--json'] : []), 'copy', '-C', '--compress', 'none', '--rsh', sshd.rsh, path.join(dir, 'src.bin'), `bcmr-test:${dir}/${dst}`,
]; // biome-ignore format: argv

/** The same for an upload: the part file is on the remote (this machine), beside `dst`. */
const interruptedUpload = (dst: string, atLeast: number, who: 'client' | 'server' | 'ssh') =>
  interrupted(dst, atLeast, who, upArgs(dst, true));

for (const who of ['client', 'server', 'ssh'] as const) {
  const how = who === 'client' ? 'a rerun with -C' : 'the same run, retrying on a new connection,';
  test(`uploads: killed ${who}, then ${how} keeps the verified remote prefix`, async () => {
    const dst = `up-${who}.bin`;
    const first = await interruptedUpload(dst, pointFor(who), who);
    const r = who === 'client' ? await bcmr(upArgs(dst, true)) : first;
    assert.equal(r.code, 0, r.stderr);
    const [file] = jsonEvents(r.stdout).filter((e) => e.event === 'file');
    assert.ok(
      Number(file.resumedFrom) >= 4 * MiB,
      `resumed from ${file.resumedFrom}: ${JSON.stringify(file)}; stderr: ${first.stderr}`,
    );
    assert.equal(Number(file.bytes) + Number(file.resumedFrom), SIZE);
    assert.ok(fs.readFileSync(path.join(dir, dst)).equals(fs.readFileSync(path.join(dir, 'src.bin'))));
    assert.equal(fs.existsSync(path.join(dir, `.${dst}.bcmr-part`)), false);
  });
}

test('uploads: a tampered block of the remote part file is resent', async () => {
  await interruptedUpload('up.bin', 24 * MiB, 'client');
  const part = path.join(dir, '.up.bin.bcmr-part');
  flipByte(part, 4 * MiB + 7);
  const r = await bcmr(upArgs('up.bin', true));
  assert.equal(r.code, 0, r.stderr);
  const [file] = jsonEvents(r.stdout).filter((e) => e.event === 'file');
  assert.equal(file.resumedFrom, 4 * MiB);
  assert.equal(Number(file.bytes), SIZE - 4 * MiB);
  assert.ok(fs.readFileSync(path.join(dir, 'up.bin')).equals(fs.readFileSync(path.join(dir, 'src.bin'))));
  assert.equal(fs.existsSync(part), false);
});

test('-C on a local copy is a usage error', async () => {
  const r = await bcmr(['copy', '-C', path.join(dir, 'src.bin'), path.join(dir, 'local.bin')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /resume/);
});
