/**
 * Our client against the real Rust `bcmr serve` (`bcmr-rs-serve`): the ServeClient over its
 * stdio for every request and mode, the direct plane, and the whole `bcmr copy` CLI through the
 * real sshd with `--remote-path` pointing at the Rust server. Bytes checked with BLAKE3.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDirect } from '../../src/client/serve/direct.js';
import { getFiles } from '../../src/client/serve/get_files.js';
import { putFiles } from '../../src/client/serve/put_files.js';
import { ServeClient } from '../../src/client/serve/serve_client.js';
import { blake3Hex, blake3Raw } from '../../src/codec/hash.js';
import { RemoteError } from '../../src/errors.js';
import { Cap } from '../../src/protocol/constants.js';
import { childChannel } from '../../src/transport/channel.js';
import { bcmr, jsonEvents, snapshot } from '../e2e/run.js';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { getBuffer, putBuffer, tempDir } from '../helpers/serve.js';
import { CODEC_MODES, RS_SERVE, RUST_MISSING } from './rust.js';

const MiB = 1 << 20;
const hashOf = (p: string) => blake3Hex(fs.readFileSync(p));

async function rustServe(root: string, caps: number, env: NodeJS.ProcessEnv = {}): Promise<ServeClient> {
  const child = spawn(RS_SERVE, ['--root', root], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, SSH_CONNECTION: '', ...env },
  });
  return ServeClient.connect(childChannel(child), { caps });
}

describe('our client -> Rust bcmr serve', { skip: RUST_MISSING ?? false }, () => {
  let base: string;
  let root: string;
  let cleanup: () => Promise<void>;
  const text = Buffer.from('the Rust server and our client agree on every byte\n'.repeat(120_000));
  const rand = randomBytes(6 * MiB + 5);
  before(async () => {
    ({ dir: base, cleanup } = await tempDir('bcmr-interop-'));
    root = path.join(base, 'root');
    fs.mkdirSync(root);
  });
  after(() => cleanup());

  for (const [name, caps] of CODEC_MODES) {
    it(`put and get, ${name}: hashes agree both ways`, async () => {
      const c = await rustServe(root, caps);
      try {
        assert.equal(c.caps, caps);
        for (const [f, data] of [
          ['empty', Buffer.alloc(0)],
          ['text', text],
          ['rand', rand],
        ] as const) {
          const p = `${name}/${f}.bin`;
          assert.equal(await putBuffer(c, p, data), blake3Hex(data));
          assert.equal(hashOf(path.join(root, p)), blake3Hex(data));
          const got = await getBuffer(c, p);
          assert.ok(got.data.equals(data));
          assert.equal(got.hash, caps & Cap.FAST ? null : blake3Hex(data));
        }
      } finally {
        await c.close();
      }
    });
  }

  it('stat, list, mkdir, hash with offset and limit, resume, truncate + PutChunked, GetChunked', async () => {
    const c = await rustServe(root, Cap.PUT_OFFSET);
    try {
      await c.mkdir('q/deep/er');
      await putBuffer(c, 'q/r.bin', rand);
      const st = await c.stat('q/r.bin');
      assert.equal(st.size, rand.length);
      assert.equal(st.isDir, false);
      assert.equal((await c.stat('q/deep')).isDir, true);
      const ls = await c.list('q');
      assert.deepEqual(
        ls.map((e) => `${e.path}:${e.isDir}`).sort(),
        ['deep:true', 'deep/er:true', 'r.bin:false'].sort(),
      );
      assert.equal(await c.hash('q/r.bin', 1000, 5000), blake3Hex(rand.subarray(1000, 6000)));
      assert.equal(await c.hash('q/r.bin'), blake3Hex(rand));
      const res = await c.resume('q/r.bin');
      assert.equal(res.size, rand.length);
      assert.equal(res.blockHash, blake3Hex(rand.subarray(0, 4 * MiB)));
      await c.truncate('q/chunked.bin', rand.length);
      const half = 4 * MiB;
      await c.putChunked('q/chunked.bin', half, rand.length - half, async (emit) => {
        await emit(rand.subarray(half));
      });
      await c.putChunked('q/chunked.bin', 0, half, async (emit) => {
        await emit(rand.subarray(0, half));
      });
      assert.equal(hashOf(path.join(root, 'q/chunked.bin')), blake3Hex(rand));
      const parts: Buffer[] = [];
      await c.getChunked('q/chunked.bin', 4096, 10_000, (b) => {
        parts.push(Buffer.from(b));
      });
      assert.ok(Buffer.concat(parts).equals(rand.subarray(4096, 14_096)));
      const off = await getBuffer(c, 'q/r.bin', 12_345);
      assert.ok(off.data.equals(rand.subarray(12_345)));
      // Put at an offset continues a partial file.
      fs.writeFileSync(path.join(root, 'q/partial.bin'), rand.subarray(0, MiB));
      await c.put('q/partial.bin', { size: rand.length, offset: MiB }, async (emit) => {
        await emit(rand.subarray(MiB, 5 * MiB));
        await emit(rand.subarray(5 * MiB));
      });
      assert.equal(hashOf(path.join(root, 'q/partial.bin')), blake3Hex(rand));
    } finally {
      await c.close();
    }
  });

  it('200 files pipelined both ways through putFiles/getFiles', async () => {
    const src = path.join(base, 'many');
    fs.mkdirSync(src);
    const names = Array.from({ length: 200 }, (_, i) => `f${i}.bin`);
    for (const [i, n] of names.entries()) fs.writeFileSync(path.join(src, n), randomBytes(500 + i * 37));
    const c = await rustServe(root, Cap.LZ4 | Cap.ZSTD | Cap.PUT_OFFSET);
    try {
      await c.mkdir('many');
      const up = await putFiles(
        c,
        names.map((n) => ({ local: path.join(src, n), remote: `many/${n}` })),
      );
      assert.deepEqual(
        up.filter((r) => r.error),
        [],
      );
      const back = path.join(base, 'many-back');
      fs.mkdirSync(back);
      const down = await getFiles(
        c,
        names.map((n) => ({
          remote: `many/${n}`,
          local: path.join(back, n),
          size: fs.statSync(path.join(src, n)).size,
        })),
      );
      assert.deepEqual(
        down.filter((r) => r.error),
        [],
      );
      assert.deepEqual(snapshot(back), snapshot(src));
    } finally {
      await c.close();
    }
  });

  it('dedup: a repeat upload of 20 MiB sends no block', async () => {
    const data = randomBytes(20 * MiB + 3);
    const file = path.join(base, 'dedup.bin');
    fs.writeFileSync(file, data);
    const env = { BCMR_CAS_DIR: path.join(base, 'rs-cas') };
    for (const [i, expectSkipped] of [
      [1, 0],
      [2, 6],
    ] as const) {
      const c = await rustServe(root, Cap.DEDUP | Cap.PUT_OFFSET, env);
      try {
        const hashes = Buffer.concat(
          Array.from({ length: 6 }, (_, b) => blake3Raw(data.subarray(b * 4 * MiB, (b + 1) * 4 * MiB))),
        );
        const t = await c.beginPut(
          `dedup-${i}.bin`,
          { size: data.length, dedupHashes: hashes },
          async (emit) => {
            for (let o = 0; o < data.length; o += 4 * MiB) await emit(data.subarray(o, o + 4 * MiB));
          },
        );
        assert.equal(await t.done, blake3Hex(data));
        assert.equal(t.skippedBlocks, expectSkipped);
      } finally {
        await c.close();
      }
      assert.equal(hashOf(path.join(root, `dedup-${i}.bin`)), blake3Hex(data));
    }
  });

  it('direct plane: a whole AES-256-GCM session through openDirect', async () => {
    const control = await rustServe(root, Cap.DIRECT_TCP | Cap.ZSTD | Cap.PUT_OFFSET);
    const c = await openDirect(control, Cap.DIRECT_TCP | Cap.ZSTD | Cap.PUT_OFFSET);
    try {
      assert.equal(c.caps & Cap.AEAD, Cap.AEAD);
      assert.equal(await putBuffer(c, 'direct/r.bin', rand), blake3Hex(rand));
      const got = await getBuffer(c, 'direct/r.bin');
      assert.ok(got.data.equals(rand));
      assert.equal((await c.stat('direct/r.bin')).size, rand.length);
    } finally {
      await c.close();
    }
  });

  it('errors: missing file, `..`, outside the root', async () => {
    const c = await rustServe(root, Cap.PUT_OFFSET);
    try {
      await assert.rejects(c.stat('nope.bin'), RemoteError);
      await assert.rejects(c.stat('../x'), RemoteError);
      await assert.rejects(c.stat('/etc/passwd'), RemoteError);
      await assert.rejects(getBuffer(c, 'nope.bin'), RemoteError);
      // After refused requests (not a failed Put, which ends a connection) the session goes on.
      assert.equal((await c.stat('')).isDir, true);
    } finally {
      await c.close();
    }
  });

  it('errors: a Put through a symlink leading out, and one onto an existing file without overwrite', async () => {
    const outside = path.join(path.dirname(root), `outside-${process.pid}.txt`);
    fs.writeFileSync(outside, 'keep');
    fs.symlinkSync(outside, path.join(root, 'link-out'));
    fs.writeFileSync(path.join(root, 'there.txt'), 'old');
    const body = Buffer.from('new content');
    const put = async (name: string) => {
      const c = await rustServe(root, Cap.PUT_OFFSET);
      try {
        await c.put(name, { size: body.length, overwrite: false }, async (emit) => {
          await emit(body);
        });
      } finally {
        await c.destroy();
      }
    };
    await assert.rejects(put('link-out'), RemoteError);
    assert.equal(fs.readFileSync(outside, 'utf8'), 'keep');
    await assert.rejects(
      put('there.txt'),
      (err: Error) => err instanceof RemoteError && /exist/i.test(err.message),
    );
    assert.equal(fs.readFileSync(path.join(root, 'there.txt'), 'utf8'), 'old');
    fs.rmSync(outside);
  });
});

describe('bcmr copy -> Rust bcmr serve, through the real sshd', { skip: RUST_MISSING ?? false }, () => {
  let sshd: SshServer;
  let dir: string;
  let cleanup: () => Promise<void>;
  const copy = (args: string[]) => copyLike(['copy', ...args]);
  /** A transfer command (copy, sync) through the real sshd to the Rust server. */
  const copyLike = ([cmd, ...args]: string[]) =>
    bcmr([cmd, '--rsh', sshd.rsh, '--remote-path', RS_SERVE, '--no-fallback', ...args], { cwd: dir });
  const remote = (p: string) => `bcmr-test:${p}`;
  before(async () => {
    sshd = await startSshd();
    ({ dir, cleanup } = await tempDir('bcmr-interop-e2e-'));
    fs.mkdirSync(path.join(dir, 'tree/sub/deeper'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'tree/a.txt'), 'a\n'.repeat(10_000));
    fs.writeFileSync(path.join(dir, "tree/sub/it's odd\nname.bin"), randomBytes(70_000));
    fs.writeFileSync(path.join(dir, 'tree/sub/deeper/r.bin'), randomBytes(3 * MiB));
    fs.mkdirSync(path.join(dir, 'tree/empty'));
    const fd = fs.openSync(path.join(dir, 'big.bin'), 'w');
    for (let i = 0; i < 5; i++) fs.writeSync(fd, randomBytes(16 * MiB));
    fs.closeSync(fd);
  });
  after(async () => {
    await sshd?.stop();
    await cleanup?.();
  });

  for (const [name, flags] of [
    ['-P 1', []],
    ['-P 4', ['-P', '4']],
    ['--direct=direct -P 2', ['--direct', 'direct', '-P', '2']],
  ] as const) {
    it(`a tree and an 80 MiB file (striped when -P > 1) both ways, ${name}`, async () => {
      const tag = name.replace(/\W+/g, '');
      fs.mkdirSync(path.join(dir, `up-${tag}`));
      const up = await copy([...flags, '-r', 'tree', 'big.bin', remote(path.join(dir, `up-${tag}`))]);
      assert.equal(up.code, 0, up.stderr);
      assert.deepEqual(snapshot(path.join(dir, `up-${tag}/tree`)), snapshot(path.join(dir, 'tree')));
      assert.equal(hashOf(path.join(dir, `up-${tag}/big.bin`)), hashOf(path.join(dir, 'big.bin')));
      fs.mkdirSync(path.join(dir, `down-${tag}`));
      const down = await copy([
        ...flags,
        '-r',
        remote(path.join(dir, `up-${tag}/tree`)),
        remote(path.join(dir, `up-${tag}/big.bin`)),
        `down-${tag}`,
      ]);
      assert.equal(down.code, 0, down.stderr);
      assert.deepEqual(snapshot(path.join(dir, `down-${tag}/tree`)), snapshot(path.join(dir, 'tree')));
      assert.equal(hashOf(path.join(dir, `down-${tag}/big.bin`)), hashOf(path.join(dir, 'big.bin')));
    });
  }

  /**
   * Starts `args`, kills the client (SIGKILL) once `part` holds 16 MiB, and returns the size it
   * had then: the copy really was interrupted part way.
   */
  async function killedAt(args: string[], part: string, final: string): Promise<number> {
    let pid = 0;
    const run = bcmr(['copy', '--rsh', sshd.rsh, '--remote-path', RS_SERVE, '--no-fallback', ...args], {
      cwd: dir,
      onSpawn: (p) => (pid = p),
    });
    const size = () => fs.statSync(part, { throwIfNoEntry: false })?.size ?? 0;
    const deadline = Date.now() + 30_000;
    while (size() < 16 * MiB && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    const at = size();
    process.kill(pid, 'SIGKILL');
    await run;
    assert.ok(at >= 16 * MiB, `the part file reached ${at} bytes`);
    assert.equal(fs.existsSync(final), false, 'the copy was interrupted before it completed');
    return at;
  }

  for (const direction of ['upload', 'download'] as const) {
    it(`-C against the Rust server: a killed ${direction} continues after its verified prefix`, async () => {
      const final = path.join(dir, `resumed-${direction}.bin`);
      const part = path.join(dir, `.resumed-${direction}.bin.bcmr-part`);
      const args =
        direction === 'upload'
          ? ['--compress', 'none', 'big.bin', remote(final)]
          : ['--compress', 'none', remote(path.join(dir, 'big.bin')), final];
      const at = await killedAt(['-C', ...args], part, final);
      const r = await copy(['-C', '--json', ...args]);
      assert.equal(r.code, 0, r.stderr);
      const [file] = jsonEvents(r.stdout).filter((e) => e.event === 'file');
      // Whole 4 MiB blocks of what was there when killed are kept (more may have landed after).
      const floor = Math.floor(at / (4 * MiB)) * 4 * MiB;
      assert.ok(Number(file.resumedFrom) >= floor, `resumedFrom ${file.resumedFrom}, part had ${at}`);
      assert.ok(Number(file.resumedFrom) < 80 * MiB, `resumedFrom ${file.resumedFrom}`);
      assert.equal(hashOf(final), hashOf(path.join(dir, 'big.bin')));
      assert.equal(fs.existsSync(part), false);
    });
  }

  it('sync against the Rust server: a changed file moves as a delta (v2 requests only)', async () => {
    const src = path.join(dir, 'delta-src.bin');
    fs.copyFileSync(path.join(dir, 'big.bin'), src);
    const dst = path.join(dir, 'delta-dst.bin');
    const sync = () => copyLike(['sync', '--json', src, remote(dst)]);
    assert.equal((await sync()).code, 0);
    const fd = fs.openSync(src, 'r+');
    fs.writeSync(fd, Buffer.from('changed'), 0, 7, 33 * MiB);
    fs.closeSync(fd);
    fs.utimesSync(src, Date.now() / 1000 + 10, Date.now() / 1000 + 10);
    const r = await sync();
    assert.equal(r.code, 0, r.stderr);
    const [file] = jsonEvents(r.stdout).filter((e) => e.event === 'file');
    assert.equal(Number(file.bytes), 64 * 1024, JSON.stringify(file));
    assert.equal(hashOf(dst), hashOf(src));
  });

  it('move both ways through the Rust server: each source goes only after its copy verified', async () => {
    fs.cpSync(path.join(dir, 'tree'), path.join(dir, 'mv-src'), { recursive: true });
    const want = snapshot(path.join(dir, 'mv-src'));
    const up = await copyLike(['move', '--json', 'mv-src', remote(path.join(dir, 'mv-remote'))]);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(fs.existsSync(path.join(dir, 'mv-src')), false, 'the local source is gone');
    assert.deepEqual(snapshot(path.join(dir, 'mv-remote')), want);
    const down = await copyLike(['move', remote(path.join(dir, 'mv-remote')), 'mv-back']);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(fs.existsSync(path.join(dir, 'mv-remote')), false, 'the remote source is gone');
    assert.deepEqual(snapshot(path.join(dir, 'mv-back')), want);
  });

  it('remove -r -y of a tree, looked up through the Rust server first', async () => {
    fs.cpSync(path.join(dir, 'tree'), path.join(dir, 'rm-tree'), { recursive: true });
    const r = await copyLike(['remove', '-r', '-y', '--json', remote(path.join(dir, 'rm-tree'))]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.existsSync(path.join(dir, 'rm-tree')), false);
    const missing = await copyLike(['remove', '-y', remote(path.join(dir, 'rm-tree'))]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No such file or directory/);
  });

  it('ls, du and hash (of a file and of a range) through the Rust server', async () => {
    const t = remote(path.join(dir, 'tree'));
    const ls = await copyLike(['ls', '--json', '-R', t]);
    assert.equal(ls.code, 0, ls.stderr);
    const listed = jsonEvents(ls.stdout).filter((e) => e.event === 'entry');
    assert.ok(listed.some((e) => e.path === 'sub/deeper/r.bin' && e.size === 3 * MiB));
    const du = jsonEvents((await copyLike(['du', '--json', t])).stdout).find((e) => e.event === 'du');
    assert.equal(du?.files, 3);
    const r = path.join(dir, 'tree/sub/deeper/r.bin');
    const h = await copyLike(['hash', '--json', remote(r), '--offset', '5', '--limit', '100000']);
    assert.equal(h.code, 0, h.stderr);
    const [e] = jsonEvents(h.stdout).filter((x) => x.event === 'hash');
    assert.equal(e.blake3, blake3Hex(fs.readFileSync(r).subarray(5, 100_005)));
  });

  it('--fast -V against the Rust server checks the result', async () => {
    fs.copyFileSync(path.join(dir, 'big.bin'), path.join(dir, 'resumed.bin'));
    const v = await copy(['--fast', '-V', remote(path.join(dir, 'resumed.bin')), 'fast-v.bin']);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(hashOf(path.join(dir, 'fast-v.bin')), hashOf(path.join(dir, 'big.bin')));
  });
});
