/**
 * bcmr installs as users install a CLI: `npm pack` of this checkout, `npm install -g` of that
 * tarball into a temp prefix without dev dependencies, then the installed `bcmr` runs
 * `--version` and a first copy to a host that has Node but no bcmr (the server bundle has to
 * be in the package). The tarball carries what a user needs and no tests or bench sources.
 * npm reads its packages from the user's npm cache (`--prefer-offline`; `npm ci` filled it).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { BCMR_BIN, tempDir } from '../helpers/serve.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(BCMR_BIN), '..');

describe('the packed tarball, installed with npm -g', () => {
  let sshd: SshServer;
  let dir: string;
  let cleanup: () => Promise<void>;
  let tarball: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    sshd = await startSshd();
    ({ dir, cleanup } = await tempDir('bcmr-e2e-package-'));
    // The npm cache stays the user's (where `npm ci` left the packages); the rest is ours.
    const cache = (await run('npm', ['config', 'get', 'cache'], { encoding: 'utf8' })).stdout.trim();
    env = {
      ...process.env,
      HOME: path.join(dir, 'home'),
      npm_config_cache: cache,
      // The installed bcmr runs on the Node running this test, found first on PATH.
      PATH: [path.join(dir, 'prefix', 'bin'), path.dirname(process.execPath), '/usr/bin', '/bin'].join(':'),
    };
    fs.mkdirSync(env.HOME as string);
    const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
    });
    tarball = path.join(dir, (JSON.parse(packed.stdout) as { filename: string }[])[0].filename);
  });
  after(async () => {
    await sshd?.stop();
    await cleanup?.();
  });

  test('carries the CLI, the server bundle and the docs; no tests, no bench', async () => {
    const { stdout } = await run('tar', ['tzf', tarball], { encoding: 'utf8' });
    const files = stdout.trim().split('\n');
    for (const must of [
      'package/bin/bcmr.js',
      'package/dist/src/cli/main.js',
      'package/dist/bundle/bcmr-server.mjs',
    ])
      assert.ok(files.includes(must), `${must} is in the tarball`);
    assert.deepEqual(
      files.filter((f) => /^package\/(test|bench|src)\/|^package\/dist\/(test|bench)\//.test(f)),
      [],
      'no test, bench or TypeScript sources',
    );
  });

  test('npm install -g gives a bcmr that runs, and copies to a host with no bcmr', async () => {
    const prefix = path.join(dir, 'prefix');
    await run(
      'npm',
      [
        'install',
        '-g',
        '--prefix',
        prefix,
        '--omit=dev',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        tarball,
      ],
      { env, encoding: 'utf8', timeout: 300_000 },
    );
    const bin = path.join(prefix, 'bin', 'bcmr');
    const version = await run(bin, ['--version'], { env, encoding: 'utf8' });
    assert.match(version.stdout, /^0\.\d+\.\d+\nblake3: /);
    const src = path.join(dir, 'hello.txt');
    fs.writeFileSync(src, 'installed and copying\n');
    const dst = path.join(dir, 'copied.txt');
    const r = await run(bin, ['copy', '--rsh', sshd.rsh, src, `bcmr-bare:${dst}`], { env, encoding: 'utf8' });
    assert.equal(fs.readFileSync(dst, 'utf8'), 'installed and copying\n', r.stderr);
  });
});
