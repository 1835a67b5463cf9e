/** Running the real CLI in a child process, and comparing trees, for end-to-end tests. */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import '../helpers/isolate.js';
import { BCMR_BIN } from '../harness/sshd.js';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function bcmr(
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; onSpawn?: (pid: number) => void } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BCMR_BIN, ...args], {
      cwd: opts.cwd,
      // TMPDIR: the client's own temp dirs (its ssh master's socket, the relay spool) land in
      // this test process's dir (isolate.ts), removed at its exit: a client a test kills with
      // SIGKILL cannot remove them, and they must not be left in the machine's /tmp.
      env: { ...process.env, BCMR_RSH: undefined, TMPDIR: process.env.BCMR_TEST_CACHE, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (child.pid) opts.onSpawn?.(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Every entry below `dir`: relative path, kind, and a content digest for files. */
export function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    for (const d of fs.readdirSync(abs, { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      const p = path.join(abs, d.name);
      if (d.isSymbolicLink()) out.push(`${r} -> ${fs.readlinkSync(p)}`);
      else if (d.isDirectory()) {
        out.push(`${r}/`);
        walk(p, r);
      } else out.push(`${r} ${createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 16)}`);
    }
  };
  walk(dir, '');
  return out.sort();
}

/** Temp files our code leaves only when something went wrong. */
export function leftovers(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((p) =>
    /\.bcmr-tmp-|\.bcmr-part/.test(p),
  );
}

export function jsonEvents(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A tree with awkward names (quotes, $, backticks, a newline, unicode), an empty dir, nesting, 7 files of a few sizes. */
export function makeOddTree(root: string): void {
  fs.mkdirSync(path.join(root, 'nested/deeper/deepest'), { recursive: true });
  fs.mkdirSync(path.join(root, 'empty dir'));
  fs.writeFileSync(path.join(root, 'plain.txt'), 'hello\n');
  fs.writeFileSync(path.join(root, 'it\'s "quoted" $HOME `x`.txt'), 'quotes');
  fs.writeFileSync(path.join(root, 'new\nline.txt'), 'newline');
  fs.writeFileSync(path.join(root, 'ünïcødé ✓.txt'), 'unicode');
  fs.writeFileSync(path.join(root, 'nested/zero.bin'), '');
  fs.writeFileSync(path.join(root, 'nested/deeper/text.log'), 'log line\n'.repeat(100_000));
  fs.writeFileSync(path.join(root, 'nested/deeper/deepest/rand.bin'), randomBytes(5 * 1024 * 1024 + 17));
}
