/**
 * `bcmr doctor` through the real sshd: a host with bcmr (server, caps, round trip, what -P auto
 * chooses, the direct port, free space, the fallback's tools), a host without (the fallback and
 * why), and one that refuses (exit 1, one finding).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { bcmr, jsonEvents } from './run.js';

let sshd: SshServer;
before(async () => {
  sshd = await startSshd();
});
after(async () => {
  await sshd?.stop();
});

async function doctor(host: string) {
  const r = await bcmr(['--json', 'doctor', host, '--rsh', sshd.rsh, '--retries', '0']);
  const [e] = jsonEvents(r.stdout).filter((x) => x.event === 'doctor');
  const findings = new Map(
    (e.findings as { check: string; ok: boolean; found: string }[]).map((f) => [f.check, f]),
  );
  return { code: r.code, findings };
}

test('a host with bcmr: installed server, caps, round trip, -P auto, direct port, space, fallback tools', async () => {
  const { code, findings } = await doctor('bcmr-test');
  assert.equal(code, 0);
  assert.match(String(findings.get('server')?.found), /installed/);
  assert.match(String(findings.get('caps')?.found), /DEDUP/);
  assert.match(String(findings.get('round trip')?.found), /ms$/);
  assert.match(String(findings.get('-P auto')?.found), /connection/);
  assert.equal(findings.get('direct port')?.ok, true);
  assert.match(String(findings.get('free space')?.found), /free in/);
  assert.match(String(findings.get('fallback')?.found), /tar gnu/);
  assert.equal(findings.get('clock')?.ok, true);
});

test('a host without bcmr: the fallback, said as not ok', async () => {
  const { code, findings } = await doctor('bcmr-nonode');
  assert.equal(code, 0);
  assert.equal(findings.get('server')?.ok, false);
  assert.match(String(findings.get('server')?.found), /plain-ssh fallback/);
  assert.match(String(findings.get('fallback')?.found), /uploads checked by size/);
});

test('a host that refuses: exit 1, and why', async () => {
  const { code, findings } = await doctor('bcmr-refused');
  assert.equal(code, 1);
  assert.match(String(findings.get('ssh')?.found), /refused/i);
  assert.equal(findings.size, 1);
});
