/**
 * bcmr where the runtime has less: with BCMR_PORTABLE=1 on both ends (BLAKE3 from WebAssembly,
 * no LZ4), and on an older Node (the system's /usr/bin/node, 20 on these machines; no zstd
 * before Node 22.15), through the real sshd, each copy bit-identical. The older-Node case is
 * skipped, with one line saying so, where no Node older than the test runner is installed.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { blake3Hex } from '../../src/codec/hash.js';
import { BCMR_BIN, type SshServer, startSshd } from '../harness/sshd.js';
import { cannotRun } from '../helpers/cannot_run.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, type RunResult, snapshot } from './run.js';

const OLD_NODE = process.env.BCMR_OLD_NODE ?? '/usr/bin/node';

function olderNode(): string | null {
  try {
    const v = execFileSync(OLD_NODE, ['--version'], { encoding: 'utf8' }).trim();
    const major = Number(v.replace(/^v/, '').split('.')[0]);
    return major >= 20 && major < Number(process.versions.node.split('.')[0]) ? v : null;
  } catch {
    return null;
  }
}

const oldVersion = olderNode();
const skip = cannotRun(
  oldVersion
    ? false
    : `no Node 20+ older than ${process.version} at ${OLD_NODE} (BCMR_OLD_NODE): bcmr on an older Node NOT tested`,
);

/** The CLI on the older Node. */
function oldBcmr(args: string[], cwd: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(OLD_NODE, [BCMR_BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe(`bcmr on ${oldVersion ?? 'an older Node'}`, { skip }, () => {
  let sshd: SshServer;
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    sshd = await startSshd();
    ({ dir, cleanup } = await tempDir('bcmr-e2e-oldnode-'));
    fs.mkdirSync(path.join(dir, 'tree/sub'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'tree/text.txt'), 'compressible line of text\n'.repeat(200_000));
    fs.writeFileSync(path.join(dir, 'tree/sub/rand.bin'), randomBytes(3 << 20));
  });
  after(async () => {
    await sshd?.stop();
    await cleanup?.();
  });

  test('client and remote server on the older Node: a tree up and down, no zstd asked or offered', async () => {
    const remotePath = `'${OLD_NODE}' '${BCMR_BIN}'`;
    const base = ['copy', '--rsh', sshd.rsh, '--remote-path', remotePath, '--no-fallback', '-r'];
    const up = await oldBcmr([...base, 'tree', `bcmr-test:${dir}/up`], dir);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(up.stderr, '');
    assert.deepEqual(snapshot(path.join(dir, 'up')), snapshot(path.join(dir, 'tree')));
    const down = await oldBcmr([...base, `bcmr-test:${dir}/up`, 'down'], dir);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(snapshot(path.join(dir, 'down')), snapshot(path.join(dir, 'tree')));
    assert.equal(
      blake3Hex(fs.readFileSync(path.join(dir, 'down/sub/rand.bin'))),
      blake3Hex(fs.readFileSync(path.join(dir, 'tree/sub/rand.bin'))),
    );
    // Every session settled without ZSTD (0x02), with LZ4 (0x01) for the text.
    const caps = [...fs.readFileSync(sshd.serveLog, 'utf8').matchAll(/session caps=0x([0-9a-f]+)/g)].map(
      (m) => Number.parseInt(m[1], 16),
    );
    assert.ok(caps.length >= 2);
    for (const c of caps) {
      assert.equal(c & 0x02, 0, `caps 0x${c.toString(16)}`);
      assert.equal(c & 0x01, 0x01, `caps 0x${c.toString(16)}`);
    }
  });
});

describe('BCMR_PORTABLE=1 on both ends', () => {
  let sshd: SshServer;
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    sshd = await startSshd();
    ({ dir, cleanup } = await tempDir('bcmr-e2e-portable-'));
    fs.mkdirSync(path.join(dir, 'tree/sub'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'tree/text.txt'), 'compressible line of text\n'.repeat(200_000));
    fs.writeFileSync(path.join(dir, 'tree/sub/rand.bin'), randomBytes(20 << 20)); // dedup-sized
  });
  after(async () => {
    await sshd?.stop();
    await cleanup?.();
  });

  test('a tree up (dedup included) and down, hashes agree, no LZ4 negotiated', async () => {
    const remotePath = `env BCMR_PORTABLE=1 '${path.join(sshd.binDir, 'bcmr')}'`;
    const env = { BCMR_PORTABLE: '1' };
    const base = ['copy', '--rsh', sshd.rsh, '--remote-path', remotePath, '--no-fallback', '--json', '-r'];
    const up = await bcmr([...base, 'tree', `bcmr-test:${dir}/up`], { cwd: dir, env });
    assert.equal(up.code, 0, up.stderr);
    assert.deepEqual(snapshot(path.join(dir, 'up')), snapshot(path.join(dir, 'tree')));
    const down = await bcmr([...base, `bcmr-test:${dir}/up`, 'down'], { cwd: dir, env });
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(snapshot(path.join(dir, 'down')), snapshot(path.join(dir, 'tree')));
    for (const line of down.stdout.trim().split('\n')) {
      const e = JSON.parse(line) as { event: string; path?: string; blake3?: string };
      if (e.event === 'file')
        assert.equal(e.blake3, blake3Hex(fs.readFileSync(path.resolve(dir, String(e.path)))));
    }
    const caps = [...fs.readFileSync(sshd.serveLog, 'utf8').matchAll(/session caps=0x([0-9a-f]+)/g)].map(
      (m) => Number.parseInt(m[1], 16),
    );
    assert.ok(caps.length >= 2);
    for (const c of caps) assert.equal(c & 0x01, 0, `caps 0x${c.toString(16)}: LZ4 without a native codec`);
  });
});

describe('zero-install: a remote with Node 20+ and no bcmr gets the server bundle', () => {
  let sshd: SshServer;
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    sshd = await startSshd();
    ({ dir, cleanup } = await tempDir('bcmr-e2e-bundle-'));
    fs.mkdirSync(path.join(dir, 'tree/sub'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'tree/a.txt'), 'a\n'.repeat(10_000));
    fs.writeFileSync(path.join(dir, 'tree/sub/r.bin'), randomBytes(1 << 20));
  });
  after(async () => {
    await sshd?.stop();
    await cleanup?.();
  });

  const cacheDir = () => path.join(sshd.home, '.cache/bcmr');
  const cached = () => (fs.existsSync(cacheDir()) ? fs.readdirSync(cacheDir()) : []);
  /** bcmr-bare: a second sshd port whose PATH has the system node but no bcmr. */
  const copyBare = (args: string[]) =>
    bcmr(['--json', 'copy', '--rsh', sshd.rsh, '--no-fallback', ...args], { cwd: dir });

  test('a remote Node older than 20: one notice, then the plain-ssh fallback', async () => {
    const r = await bcmr(['--json', 'copy', '--rsh', sshd.rsh, 'tree/a.txt', `bcmr-oldnode:${dir}/old.txt`], {
      cwd: dir,
    });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /remote node v18\.20\.0 is older than 20.*plain ssh/);
    assert.equal((JSON.parse(r.stdout.split('\n')[0]) as { server: string }).server, 'fallback');
    assert.equal(fs.readFileSync(path.join(dir, 'old.txt'), 'utf8'), 'a\n'.repeat(10_000));
  });

  test('sent once, then used from the cache; a tampered cache is replaced', async () => {
    const first = await copyBare(['-r', 'tree', `bcmr-bare:${dir}/up1`]);
    assert.equal(first.code, 0, first.stderr);
    const start = JSON.parse(first.stdout.split('\n')[0]) as { server: string; remoteNode?: string };
    assert.equal(start.server, 'bundle');
    assert.match(String(start.remoteNode), /^v\d+\./);
    assert.deepEqual(snapshot(path.join(dir, 'up1')), snapshot(path.join(dir, 'tree')));
    const files = cached().filter((n) => n.startsWith('server-'));
    assert.equal(files.length, 1, String(files));
    const file = path.join(cacheDir(), files[0]);
    assert.equal((fs.statSync(cacheDir()).mode & 0o777).toString(8), '700');
    assert.equal((fs.statSync(file).mode & 0o777).toString(8), '600');
    const good = fs.readFileSync(file);
    // Second copy: the cached bundle is used as is (not rewritten).
    const mtime = fs.statSync(file).mtimeMs;
    const again = await copyBare(['-r', `bcmr-bare:${dir}/up1`, 'down1']);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(snapshot(path.join(dir, 'down1')), snapshot(path.join(dir, 'tree')));
    assert.equal(fs.statSync(file).mtimeMs, mtime);
    // A tampered cache does not hash right: it is sent again and replaced.
    fs.appendFileSync(file, '\n// tampered\n');
    const third = await copyBare(['tree/a.txt', `bcmr-bare:${dir}/a3.txt`]);
    assert.equal(third.code, 0, third.stderr);
    assert.ok(fs.readFileSync(file).equals(good));
    assert.equal(fs.readFileSync(path.join(dir, 'a3.txt'), 'utf8'), 'a\n'.repeat(10_000));
  });

  test('a cache directory another user could write is not used: the bundle runs from a private one', async () => {
    // Made by "another user" (nobody), mode 0777: a file there could be swapped after its hash
    // check, or a compile-cache entry planted. Nothing may be read from or written into it.
    fs.rmSync(cacheDir(), { recursive: true, force: true });
    fs.mkdirSync(cacheDir(), { recursive: true });
    fs.chmodSync(cacheDir(), 0o777);
    if (process.getuid?.() === 0) fs.chownSync(cacheDir(), 65534, 65534);
    try {
      const r = await copyBare(['tree/a.txt', `bcmr-bare:${dir}/a4.txt`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout.split('\n')[0]) as { server: string }).server, 'bundle');
      assert.equal(fs.readFileSync(path.join(dir, 'a4.txt'), 'utf8'), 'a\n'.repeat(10_000));
      assert.deepEqual(cached(), []);
      // The private directory it used instead is gone with the session.
      const left = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('bcmr-boot-'));
      assert.deepEqual(left, []);
    } finally {
      fs.rmSync(cacheDir(), { recursive: true, force: true });
    }
  });
});

describe('bcmr deploy', () => {
  let sshd: SshServer;
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    sshd = await startSshd();
    ({ dir, cleanup } = await tempDir('bcmr-e2e-deploy-'));
    fs.writeFileSync(path.join(dir, 'a.txt'), 'deployed\n');
  });
  after(async () => {
    await sshd?.stop();
    await cleanup?.();
  });

  const run = (args: string[]) => bcmr(args, { cwd: dir, env: { BCMR_RSH: sshd.rsh } });
  const startOf = (r: RunResult) => JSON.parse(r.stdout.split('\n')[0]) as { server: string };

  test('installs, is idempotent, is used by copy, is reported by --check, and --remove undoes it', async () => {
    const launcher = path.join(sshd.home, '.local/bin/bcmr');
    const bundle = path.join(sshd.home, '.local/share/bcmr/bcmr-server.mjs');
    for (let i = 0; i < 2; i++) {
      const r = await run(['deploy', 'bcmr-bare']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^deployed [0-9a-f]{64} with node v\d+/);
    }
    assert.equal((fs.statSync(launcher).mode & 0o777).toString(8), '755');
    assert.equal((fs.statSync(bundle).mode & 0o777).toString(8), '600');
    assert.deepEqual(
      fs.readdirSync(path.dirname(bundle)).filter((n) => n.includes('tmp')),
      [],
    );
    // bcmr-bare has no bcmr on its PATH: the deployed launcher is found and used.
    const copy = await run(['--json', 'copy', '--no-fallback', 'a.txt', `bcmr-bare:${dir}/b.txt`]);
    assert.equal(copy.code, 0, copy.stderr);
    assert.equal(startOf(copy).server, 'installed');
    assert.equal(fs.readFileSync(path.join(dir, 'b.txt'), 'utf8'), 'deployed\n');
    const check = await run(['deploy', '--check', 'bcmr-bare']);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /deployed bundle: .*sha256 [0-9a-f]{64}/);
    assert.match(check.stdout, /launcher: .*\.local\/bin\/bcmr/);
    assert.match(check.stdout, /node: .* v\d+/);
    const removed = await run(['deploy', '--remove', 'bcmr-bare']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(fs.existsSync(launcher), false);
    assert.equal(fs.existsSync(bundle), false);
    // Without the deploy, the zero-install bundle takes over again.
    const after = await run(['--json', 'copy', '--no-fallback', '-f', 'a.txt', `bcmr-bare:${dir}/b.txt`]);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(startOf(after).server, 'bundle');
  });

  test('--with-node ships this Node to a remote with none, which then serves copies; --remove takes it away', async () => {
    const runtime = path.join(sshd.home, '.local/share/bcmr/node');
    // bcmr-nonode: the system's tools on PATH, no node, no bcmr.
    const before = await run(['--json', 'copy', '--no-fallback', 'a.txt', `bcmr-nonode:${dir}/n.txt`]);
    assert.notEqual(before.code, 0, 'no server should be reachable before the deploy');
    const r = await run(['deploy', '--with-node', 'bcmr-nonode']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^node runtime ${process.version} installed`, 'm'));
    assert.match(r.stdout, new RegExp(`^deployed [0-9a-f]{64} with node ${process.version}`, 'm'));
    assert.ok(
      fs.readFileSync(runtime).equals(fs.readFileSync(process.execPath)),
      'the runtime arrived whole',
    );
    const copy = await run(['--json', 'copy', '--no-fallback', 'a.txt', `bcmr-nonode:${dir}/n.txt`]);
    assert.equal(copy.code, 0, copy.stderr);
    assert.equal(startOf(copy).server, 'installed');
    assert.equal(fs.readFileSync(path.join(dir, 'n.txt'), 'utf8'), 'deployed\n');
    const again = await run(['deploy', '--with-node', 'bcmr-nonode']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /deployed node 24: kept/);
    const check = await run(['deploy', '--check', 'bcmr-nonode']);
    assert.match(check.stdout, /^node: none$/m);
    assert.match(check.stdout, new RegExp(`^deployed node: .*/node ${process.version}$`, 'm'));
    const removed = await run(['deploy', '--remove', 'bcmr-nonode']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(fs.existsSync(runtime), false);
    assert.equal(fs.existsSync(path.join(sshd.home, '.local/bin/bcmr')), false);
  });

  test('--with-node refuses a remote of another OS or CPU with one line, shipping nothing', async () => {
    // The remote's uname says it is a Mac: a wrapper in front of the real one on its PATH.
    const uname = sshd.replaceTool('uname', '#!/bin/sh\necho Darwin arm64\n');
    try {
      const r = await run(['deploy', '--with-node', 'bcmr-nonode']);
      assert.equal(r.code, 2, r.stderr);
      assert.ok(
        r.stderr.includes(`the remote is 'Darwin arm64' and this runtime is '${os.type()} ${os.machine()}'`),
        r.stderr,
      );
      assert.equal(fs.existsSync(path.join(sshd.home, '.local/share/bcmr/node')), false);
    } finally {
      uname.restore();
    }
  });
});
