/**
 * The real Rust bcmr client (`bcmr-rs-client`, over its own ServeClient and pool) against our
 * `bcmr serve`: every operation and mode, over stdio and over the direct plane. Bytes are
 * checked with BLAKE3 on both sides: the Rust client's own hash of what it sent or received,
 * and ours of the file on disk.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { blake3Hex } from '../../src/codec/hash.js';
import { Cap } from '../../src/protocol/constants.js';
import { tempDir } from '../helpers/serve.js';
import { CODEC_MODES, ourServer, RUST_MISSING, rustClient } from './rust.js';

const MiB = 1 << 20;
const hashOf = (p: string) => blake3Hex(fs.readFileSync(p));

function text(n: number): Buffer {
  const line = Buffer.from('interop: the quick brown fox jumps over the lazy dog 0123456789\n');
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += line.length) line.copy(b, i, 0, Math.min(line.length, n - i));
  return b;
}

describe('Rust client -> our bcmr serve', { skip: RUST_MISSING ?? false }, () => {
  let base: string;
  let root: string;
  let local: string;
  let cleanup: () => Promise<void>;
  let server: string;
  const files: Record<string, string> = {};
  const rs = (args: string[], caps?: number, extra: string[] = []) =>
    rustClient([
      '--server',
      server,
      ...(caps === undefined ? [] : ['--caps', `0x${caps.toString(16)}`]),
      ...extra,
      ...args,
    ]);
  const ok = (r: Awaited<ReturnType<typeof rs>>) => {
    assert.equal(r.ok, true, String(r.error));
    return r;
  };

  before(async () => {
    ({ dir: base, cleanup } = await tempDir('bcmr-interop-'));
    root = path.join(base, 'root');
    local = path.join(base, 'local');
    fs.mkdirSync(root);
    fs.mkdirSync(local);
    server = ourServer(root);
    const write = (name: string, data: Buffer) => {
      files[name] = path.join(local, name);
      fs.writeFileSync(files[name], data);
    };
    write('empty.bin', Buffer.alloc(0));
    write('text.txt', text(5 * MiB + 17));
    write('rand.bin', randomBytes(5 * MiB + 3));
    write('dedup.bin', randomBytes(20 * MiB + 5));
    write('big.bin', randomBytes(40 * MiB + 11));
    fs.mkdirSync(path.join(local, 'many/sub'), { recursive: true });
    for (let i = 0; i < 60; i++)
      fs.writeFileSync(path.join(local, `many/${i % 2 ? 'sub/' : ''}f${i}.bin`), randomBytes(1000 + i * 97));
  });
  after(() => cleanup());

  it('handshake: over stdio we grant every asked bit but AEAD', async () => {
    const r = ok(await rs(['handshake'], 0xff));
    assert.equal(r.caps_effective, 0xff & ~Cap.AEAD);
  });

  for (const [name, caps] of CODEC_MODES) {
    it(`put and get, ${name} (caps 0x${caps.toString(16)}), text and random, hashes agree`, async () => {
      for (const f of ['empty.bin', 'text.txt', 'rand.bin']) {
        const dest = `${name}/${f}`;
        const up = ok(await rs(['put', files[f], dest], caps, caps & Cap.SYNC ? ['--sync'] : []));
        assert.equal(up.caps_effective, caps);
        assert.equal(hashOf(path.join(root, dest)), hashOf(files[f]));
        assert.equal(up.hash, hashOf(files[f]));
        assert.equal(up.local_hash, hashOf(files[f]));
        const back = path.join(base, `${name}-${f}`);
        const down = ok(await rs(['get', dest, back], caps));
        assert.equal(hashOf(back), hashOf(files[f]));
        assert.equal(down.local_hash, hashOf(files[f]));
      }
    });
  }

  it('stat, list (a file lists as nothing), mkdir, hash with offset and limit, resume', async () => {
    ok(await rs(['put', files['text.txt'], 'q/t.txt']));
    const st = ok(await rs(['stat', 'q/t.txt']));
    assert.equal(st.size, 5 * MiB + 17);
    assert.equal(st.is_dir, false);
    ok(await rs(['mkdir', 'q/made/deep']));
    assert.ok(fs.statSync(path.join(root, 'q/made/deep')).isDirectory());
    const ls = ok(await rs(['list', 'q']));
    assert.deepEqual(
      ls.entries?.map((e) => `${e.path}:${e.is_dir}`).sort(),
      ['made:true', 'made/deep:true', 't.txt:false'].sort(),
    );
    assert.deepEqual(ok(await rs(['list', 'q/t.txt'])).entries, []);
    const data = fs.readFileSync(files['text.txt']);
    const h = ok(await rs(['hash', 'q/t.txt', '1000', '5000']));
    assert.equal(h.hash, blake3Hex(data.subarray(1000, 6000)));
    const r = ok(await rs(['resume', 'q/t.txt']));
    assert.equal(r.size, data.length);
    assert.equal(r.block_hash, blake3Hex(data.subarray(0, 4 * MiB)));
  });

  it('get with an offset, and past the end (no data, Ok with the hash of nothing)', async () => {
    ok(await rs(['put', files['rand.bin'], 'off.bin']));
    const data = fs.readFileSync(files['rand.bin']);
    const out = path.join(base, 'off-part');
    const r = ok(await rs(['get-simple', 'off.bin', out, '1234567']));
    assert.ok(fs.readFileSync(out).equals(data.subarray(1234567)));
    assert.equal(r.hash, blake3Hex(data.subarray(1234567)));
    const past = ok(await rs(['get-simple', 'off.bin', `${out}2`, String(data.length + 10)]));
    assert.equal(past.hash, blake3Hex(Buffer.alloc(0)));
    assert.equal(fs.statSync(`${out}2`).size, 0);
  });

  it('put at an offset (resume) completes a partial file', async () => {
    const data = fs.readFileSync(files['rand.bin']);
    fs.writeFileSync(path.join(root, 'partial.bin'), data.subarray(0, 2 * MiB));
    ok(await rs(['put-at', files['rand.bin'], 'partial.bin', String(2 * MiB)]));
    assert.equal(hashOf(path.join(root, 'partial.bin')), hashOf(files['rand.bin']));
  });

  it('dedup: a first upload sends the file, a repeat only hashes', async () => {
    const caps = Cap.DEDUP | Cap.PUT_OFFSET;
    const first = ok(await rs(['put', files['dedup.bin'], 'dd/one.bin'], caps));
    assert.ok(Number(first.stdio_bytes_sent) > 20 * MiB, String(first.stdio_bytes_sent));
    const again = ok(await rs(['put', files['dedup.bin'], 'dd/two.bin'], caps));
    assert.ok(Number(again.stdio_bytes_sent) < 64 * 1024, String(again.stdio_bytes_sent));
    assert.equal(hashOf(path.join(root, 'dd/two.bin')), hashOf(files['dedup.bin']));
  });

  for (const n of [1, 2, 4]) {
    it(`striped put and get over --parallel ${n} (Truncate, PutChunked + Done, GetChunked)`, async () => {
      const dest = `striped-${n}.bin`;
      ok(await rs(['put-striped', files['big.bin'], dest], undefined, ['--parallel', String(n)]));
      assert.equal(hashOf(path.join(root, dest)), hashOf(files['big.bin']));
      const back = path.join(base, `striped-back-${n}`);
      ok(await rs(['get-striped', dest, back], undefined, ['--parallel', String(n)]));
      assert.equal(hashOf(back), hashOf(files['big.bin']));
    });
  }

  it('many files pipelined over a pool of 3, both ways', async () => {
    ok(await rs(['put-many', path.join(local, 'many'), 'many'], undefined, ['--parallel', '3']));
    const back = path.join(base, 'many-back');
    ok(await rs(['get-many', 'many', back], undefined, ['--parallel', '3']));
    for (const rel of fs.readdirSync(path.join(local, 'many'), { recursive: true }) as string[]) {
      const src = path.join(local, 'many', rel);
      if (fs.statSync(src).isDirectory()) continue;
      assert.equal(hashOf(path.join(root, 'many', rel)), hashOf(src), rel);
      assert.equal(hashOf(path.join(back, rel)), hashOf(src), rel);
    }
  });

  const direct = Cap.DIRECT_TCP | Cap.AEAD | Cap.ZSTD | Cap.DEDUP;
  it('direct plane: put, get and striped both ways (AES-256-GCM), stdin of ssh closed early', async () => {
    for (let i = 0; i < 3; i++) {
      const up = ok(await rs(['put', files['rand.bin'], `direct/r${i}.bin`], direct, ['--direct']));
      assert.equal(up.aead, true);
      assert.equal(hashOf(path.join(root, `direct/r${i}.bin`)), hashOf(files['rand.bin']));
      const back = path.join(base, `direct-back-${i}`);
      ok(await rs(['get', `direct/r${i}.bin`, back], direct, ['--direct']));
      assert.equal(hashOf(back), hashOf(files['rand.bin']));
    }
    ok(
      await rs(['put-striped', files['big.bin'], 'direct/big.bin'], direct, ['--direct', '--parallel', '2']),
    );
    assert.equal(hashOf(path.join(root, 'direct/big.bin')), hashOf(files['big.bin']));
    const back = path.join(base, 'direct-big-back');
    ok(await rs(['get-striped', 'direct/big.bin', back], direct, ['--direct', '--parallel', '2']));
    assert.equal(hashOf(back), hashOf(files['big.bin']));
  });

  it('direct plane: many files over 2 connections, both ways', async () => {
    ok(await rs(['put-many', path.join(local, 'many'), 'dmany'], direct, ['--direct', '--parallel', '2']));
    const back = path.join(base, 'dmany-back');
    for (let i = 0; i < 3; i++)
      ok(await rs(['get-many', 'dmany', `${back}${i}`], direct, ['--direct', '--parallel', '2']));
    // Every file, up and in each of the three downloads.
    const rels = (fs.readdirSync(path.join(local, 'many'), { recursive: true }) as string[]).filter((rel) =>
      fs.statSync(path.join(local, 'many', rel)).isFile(),
    );
    assert.equal(rels.length, 60);
    for (const rel of rels) {
      const want = hashOf(path.join(local, 'many', rel));
      assert.equal(hashOf(path.join(root, 'dmany', rel)), want, `uploaded ${rel}`);
      for (let i = 0; i < 3; i++)
        assert.equal(hashOf(path.join(`${back}${i}`, rel)), want, `download ${i}: ${rel}`);
    }
  });

  // (The Rust driver runs one operation per session: that a session stays usable after an
  // error is tested with our client, in integration/interrupted_put and client_server.)
  it('errors, each with its kind: missing file, `..`, outside the root, a symlink leading out, a refused Put', async () => {
    assert.match(String((await rs(['get', 'nope.bin', path.join(base, 'x')])).error), /not-found/);
    assert.match(String((await rs(['stat', '../x'])).error), /escape/);
    assert.match(String((await rs(['stat', '/etc/passwd'])).error), /escape/);
    const outside = path.join(base, 'outside.txt');
    fs.writeFileSync(outside, 'keep');
    fs.symlinkSync(outside, path.join(root, 'link-out'));
    const out = await rs(['put', files['text.txt'], 'link-out']);
    assert.equal(out.ok, false);
    assert.match(String(out.error), /escape/, 'refused as leading out, not for any other reason');
    assert.equal(fs.readFileSync(outside, 'utf8'), 'keep');
    // A refused Put (exists, no overwrite) is answered at once, as an Error the client reports.
    ok(await rs(['put', files['text.txt'], 'q/t.txt']));
    const r = await rs(['put', files['text.txt'], 'q/t.txt'], undefined, ['--no-overwrite']);
    assert.equal(r.ok, false);
    assert.match(String(r.error), /exists/);
  });
});
