/** `bcmr serve` as a process: the raw handshake bytes, and clean failures on bad input. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { BCMR_BIN, tempDir } from '../helpers/serve.js';

function run(
  root: string,
  input: Buffer,
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BCMR_BIN, 'serve', '--root', root], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
    child.stdin.end(input);
  });
}

const hex = (s: string) => Buffer.from(s.replace(/ /g, ''), 'hex');

describe('bcmr serve process', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ dir: root, cleanup } = await tempDir());
  });
  after(() => cleanup());

  it('answers Hello{2, 0x1f} with Welcome{2, 0x1f} and exits 0 at EOF', async () => {
    const r = await run(root, hex('03 00 00 00 01 02 1f'));
    assert.equal(r.stdout.toString('hex'), '0300000081021f');
    assert.equal(r.code, 0);
    assert.equal(r.stderr, '');
  });

  it('runs as its one-file bundle with the native codecs (LZ4 offered), answering as the CLI path does', async () => {
    const hello = hex('03 00 00 00 01 02 bf');
    const [bundled, cli] = await Promise.all([
      run(root, hello),
      run(root, hello, { BCMR_SERVE_UNBUNDLED: '1' }),
    ]);
    assert.equal(bundled.stdout.toString('hex'), cli.stdout.toString('hex'));
    assert.equal(bundled.stdout[6] & 0x01, 0x01, 'LZ4 (a native addon) offered');
    assert.equal(bundled.code, 0);
  });

  it('offers every cap but AEAD over stdio (0xBF, as the Rust server over ssh)', async () => {
    const r = await run(root, hex('03 00 00 00 01 02 ff'));
    assert.equal(r.stdout.toString('hex'), '030000008102bf');
  });

  it('refuses a version mismatch with an Error frame', async () => {
    const r = await run(root, hex('03 00 00 00 01 03 1f'));
    const msg = 'protocol version mismatch: client=3 server=2';
    const expected = Buffer.alloc(9 + msg.length);
    expected.writeUInt32LE(5 + msg.length, 0);
    expected[4] = 0x83;
    expected.writeUInt32LE(msg.length, 5);
    expected.write(msg, 9);
    assert.deepEqual(r.stdout, expected);
    assert.notEqual(r.code, 0);
  });

  it('refuses a first frame that is not Hello', async () => {
    const r = await run(root, hex('06 00 00 00 03 01 00 00 00 66'));
    assert.equal(r.stdout[4], 0x83);
    assert.match(r.stdout.subarray(9).toString(), /^expected Hello/);
    assert.notEqual(r.code, 0);
  });

  it('ends a malformed stream with one stderr line, no stack trace, non-zero exit', async () => {
    for (const bad of ['ff ff ff 7f', '00 00 00 00', '05 00 00 00 7e 00 00 00 00', '0a 00 00 00 03 01']) {
      const r = await run(root, Buffer.concat([hex('03 00 00 00 01 02 1f'), hex(bad)]));
      assert.equal(r.stdout.toString('hex'), '0300000081021f', bad);
      assert.equal(r.code, 3, bad);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });

  it('exits 3 after a broken stream even when its stderr is gone (ssh channel closed)', async () => {
    const child = spawn(process.execPath, [BCMR_BIN, 'serve', '--root', root], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    // Nobody reads stderr any more: the server's error line meets EPIPE, as when ssh was killed.
    child.stderr.destroy();
    child.stdout.resume();
    const code = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    child.stdin.end(Buffer.concat([hex('03 00 00 00 01 02 1f'), hex('0a 00 00 00 03 01')]));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    assert.equal(await code, 3);
    clearTimeout(timer);
  });
});
