/**
 * Zero-install remote server: when the remote has no `bcmr` but has a Node 20+, the client
 * ships the single-file server bundle (dist/bundle/bcmr-server.mjs, pure JS + WASM) and runs it
 * there. One ssh exec does it all: a small boot script on the remote's `node` looks for
 * `~/.cache/bcmr/server-<sha256>.mjs`, says `bcmr-bundle:need` when it is missing or does not
 * hash right, then reads exactly the bundle's bytes from stdin, verifies their SHA-256, stores
 * them atomically (0600 in a 0700 dir) and runs the server in the same process.
 *
 * The client sends Hello before it knows whether the remote needs the bundle (a forced-command
 * server never prints anything first). On `need`, the boot script reads and drops that 7-byte
 * Hello before the bundle, and the client sends Hello again once the server is running.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Bundle {
  bytes: Buffer;
  sha256: string;
}

let cached: Bundle | null | undefined;

/** The bundle of this installation, or null when it was not built (then no zero-install). */
export function serverBundle(): Bundle | null {
  if (cached !== undefined) return cached;
  try {
    const bytes = readFileSync(fileURLToPath(new URL('../../../bundle/bcmr-server.mjs', import.meta.url)));
    cached = { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
  } catch {
    cached = null;
  }
  return cached;
}

/** Length of the Hello frame the client sends first (len 3, type, version, caps). */
const HELLO_FRAME_BYTES = 7;

/**
 * The boot script run by the remote `node -e` (CommonJS). Arguments: sha256, size. Lines it
 * prints: `bcmr-server:old-node vX` (exit 127), `bcmr-bundle:need`, `bcmr-server:bad-bundle`
 * (exit 127), `bcmr-server:bundle vX` (then the server's frames follow).
 */
const BOOT = [
  'const [hash, size] = process.argv.slice(1);',
  "const fs = require('fs'), path = require('path'), crypto = require('crypto'), os = require('os');",
  "const say = (s) => fs.writeSync(1, s + '\\n');",
  "if (+process.versions.node.split('.')[0] < 20) { say('bcmr-server:old-node ' + process.version); process.exit(127); }",
  // The cache directory is used only when it and ~/.cache are ours (or root's, for ~/.cache),
  // not links and writable by nobody else: then no other user can swap the bundle between its
  // hash check and its import, nor plant a compile-cache entry. Otherwise a fresh private
  // directory (mkdtemp: 0700, a new name) holds the bundle for this run only.
  'const me = process.getuid();',
  'const mine = (d, base) => { try { const s = fs.lstatSync(d); return s.isDirectory() && (s.uid === me || (base && s.uid === 0)) && (s.mode & (base ? 0o022 : 0o077)) === 0; } catch { return false; } };',
  "const cacheBase = path.join(os.homedir(), '.cache');",
  "let dir = path.join(cacheBase, 'bcmr');",
  'try { fs.mkdirSync(dir, { recursive: true, mode: 0o700 }); } catch {}',
  'const cached = mine(cacheBase, true) && mine(dir, false);',
  "if (cached === false) { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bcmr-boot-')); process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true })); }",
  "const file = path.join(dir, 'server-' + hash + '.mjs');",
  "const good = (b) => crypto.createHash('sha256').update(b).digest('hex') === hash;",
  'const readExactly = (n) => {',
  '  const buf = Buffer.alloc(n);',
  '  let got = 0;',
  '  while (got < n) {',
  '    let r;',
  "    try { r = fs.readSync(0, buf, got, n - got, null); } catch (e) { if (e.code === 'EAGAIN') continue; throw e; }",
  '    if (r === 0) break;',
  '    got += r;',
  '  }',
  '  return buf.subarray(0, got);',
  '};',
  // O_NOFOLLOW: a link planted in its place is not read.
  'let have = false;',
  'try { const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW); try { have = fs.fstatSync(fd).uid === me && good(fs.readFileSync(fd)); } finally { fs.closeSync(fd); } } catch {}',
  'if (have === false) {',
  "  say('bcmr-bundle:need');",
  `  readExactly(${HELLO_FRAME_BYTES});`,
  '  const b = readExactly(+size);',
  "  if (b.length < +size || good(b) === false) { say('bcmr-server:bad-bundle'); process.exit(127); }",
  "  const tmp = file + '.tmp-' + process.pid;",
  '  try { fs.unlinkSync(tmp); } catch {}',
  // wx: O_EXCL, never written through a link.
  "  fs.writeFileSync(tmp, b, { mode: 0o600, flag: 'wx' });",
  '  fs.renameSync(tmp, file);',
  '}',
  "say('bcmr-server:bundle ' + process.version + (have ? ' cached' : ' sent'));",
  "const ecc = require('module').enableCompileCache;",
  "if (cached && ecc) { const v8 = path.join(dir, 'v8'); try { fs.mkdirSync(v8, { mode: 0o700 }); } catch {} if (mine(v8, false)) ecc(v8); }",
  "process.argv = [process.argv[0], file, 'serve', '--root', '/'];",
  "import(require('url').pathToFileURL(file).href);",
  // One line with no `!`: the command passes through the login shell, and csh can hold neither
  // a newline nor a `!` inside single quotes.
].join(' ');

/** Shell text that runs the boot script on the remote's `node`, if there is one. */
export function bundleBoot(bundle: Bundle, quote: (s: string) => string): string {
  return `exec node -e ${quote(BOOT)} -- ${bundle.sha256} ${bundle.bytes.length}`;
}
