/**
 * Shell completion: the hidden `__complete` (commands, a command's options, remote paths
 * through the real sshd, a name with spaces) and the bash script itself, run by bash with a
 * `bcmr` of this checkout first on PATH (a wrapper script in the test's temp dir). `--install`
 * and `--uninstall` write and remove only under the temporary HOME given.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BCMR_BIN, type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr } from './run.js';

let sshd: SshServer;
let dir: string;
let cleanup: () => Promise<void>;
const lines = (s: string) => s.split('\n').filter((l) => l !== '');

before(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = await tempDir('bcmr-e2e-complete-'));
  fs.mkdirSync(path.join(dir, 'remote/a dir with spaces'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'remote/alpha.txt'), 'a');
  fs.writeFileSync(path.join(dir, 'remote/beta.txt'), 'b');
  fs.mkdirSync(path.join(dir, 'bin'));
  fs.writeFileSync(path.join(dir, 'bin/bcmr'), `#!/bin/sh\nexec '${process.execPath}' '${BCMR_BIN}' "$@"\n`, {
    mode: 0o755,
  });
});

after(async () => {
  await sshd?.stop();
  await cleanup?.();
});

test('__complete: commands, options of the command, files left to the shell', async () => {
  assert.deepEqual(lines((await bcmr(['__complete', 'sy'])).stdout), ['sync']);
  assert.ok(lines((await bcmr(['__complete', 'r'])).stdout).includes('remove'));
  const opts = lines((await bcmr(['__complete', '--b', 'copy'])).stdout);
  assert.deepEqual(opts.sort(), ['--background', '--bwlimit']);
  assert.deepEqual(lines((await bcmr(['__complete', 'some/pa', 'copy'])).stdout), ['__files__']);
});

test('__complete: remote paths through ssh, a directory with spaces, within the timeout', async () => {
  const host = `bcmr-test:${path.join(dir, 'remote')}/`;
  const t0 = performance.now();
  const r = await bcmr(['__complete', `${host}a`, 'cp', '--rsh', sshd.rsh]);
  assert.ok(performance.now() - t0 < 8000);
  assert.deepEqual(lines(r.stdout), [`${host}a dir with spaces/`, `${host}alpha.txt`]);
  const refused = await bcmr(['__complete', 'bcmr-refused:x', 'cp', '--rsh', sshd.rsh]);
  assert.equal(refused.code, 0);
  assert.deepEqual(lines(refused.stdout), []);
});

test('the bash script completes a remote directory with spaces (what is before the colon stays)', () => {
  const script = execFileSync(process.execPath, [BCMR_BIN, 'completions', 'bash'], { encoding: 'utf8' });
  const cur = `bcmr-test:${path.join(dir, 'remote')}/a`;
  const line = `bcmr cp --rsh '${sshd.rsh}' ${cur}`;
  const out = execFileSync(
    'bash',
    [
      '-c',
      `${script}
COMP_LINE="$1"; COMP_POINT=\${#COMP_LINE}
COMP_WORDS=(bcmr cp --rsh "$2" bcmr-test : "\${3#bcmr-test:}"); COMP_CWORD=6
_bcmr 2>/dev/null
printf '%s\\n' "\${COMPREPLY[@]}"`,
      'bash',
      line,
      sshd.rsh,
      cur,
    ],
    { encoding: 'utf8', env: { ...process.env, PATH: `${path.join(dir, 'bin')}:/usr/bin:/bin` } },
  );
  assert.deepEqual(lines(out), [
    `${path.join(dir, 'remote')}/a dir with spaces/`,
    `${path.join(dir, 'remote')}/alpha.txt`,
  ]);
});

test('--install and --uninstall write and remove under HOME only', async () => {
  const home = path.join(dir, 'home');
  fs.mkdirSync(home);
  const env = { HOME: home, XDG_DATA_HOME: '', XDG_CONFIG_HOME: '' };
  for (const [shell, file] of [
    ['bash', '.local/share/bash-completion/completions/bcmr'],
    ['zsh', '.zfunc/_bcmr'],
    ['fish', '.config/fish/completions/bcmr.fish'],
  ] as const) {
    assert.equal((await bcmr(['completions', shell, '--install'], { env })).code, 0);
    assert.match(fs.readFileSync(path.join(home, file), 'utf8'), /bcmr __complete/);
    assert.equal((await bcmr(['completions', shell, '--uninstall'], { env })).code, 0);
    assert.equal(fs.existsSync(path.join(home, file)), false);
  }
});
