/**
 * Hostile names through every script bcmr sends to a remote shell, on every kind of account the
 * harness has: sh with no bcmr (the tar and `cat` fallback), tcsh and fish with no bcmr (the
 * same scripts through another login shell), and a bcmr server (whose -p modes and times, links
 * and -C publishing still travel as sh). Names are generated (fast-check, seed printed on
 * failure) from pieces a shell would act on: command substitutions in three syntaxes that
 * would create a file named PWNED in the remote home, quotes, backslashes, newlines, globs,
 * `~`, a leading `-`, non-ASCII, and 255-byte components.
 *
 * Each tree goes up with `-r -p --no-deref`, comes back down, and its big files go again with
 * -C (BCMR_CAT_MIN_BYTES makes 4 KiB files take the big-file scripts). Asserted: no file named
 * PWNED appears anywhere, every copy exits 0, and the trees are identical at each step (names,
 * contents, links, modes, mtimes): exact placement.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { type SshServer, startSshd } from '../harness/sshd.js';
import { tempDir } from '../helpers/serve.js';
import { bcmr, leftovers } from './run.js';

/** Pieces a shell would interpret; names are made of 1-4 of them around plain text. */
const PIECES = [
  '$(cd;touch PWNED)',
  '`cd;touch PWNED`',
  '(cd;touch PWNED)',
  "'",
  '"',
  '\\',
  '\n',
  '*',
  '?',
  '[ab]',
  '{a,b}',
  '~',
  ';',
  '|',
  '&',
  '!',
  '#',
  '%',
  ' ',
  '\t',
  '$HOME',
  '$s',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a name, not a template
  '${t}',
  '<',
  '>',
  'a=b',
  'é',
  '✓',
  '日本',
];

const LONG_COMPONENT = `${'é'.repeat(126)}abc`; // 255 bytes

const nameArb = fc
  .tuple(
    fc.constantFrom('', '-', '~', '.'),
    fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 4 }),
    fc.string({ unit: fc.constantFrom('x', 'y', 'z', '0'), minLength: 1, maxLength: 3 }),
  )
  .map(([lead, pieces, tail]) => `${lead}${pieces.join('')}${tail}`)
  .filter((n) => n !== '.' && n !== '..' && Buffer.byteLength(n) <= 255);

interface Tree {
  dirs: string[];
  files: { rel: string; size: number; mode: number }[];
  links: { rel: string; target: string }[];
}

interface TreeSpec {
  d1: string;
  d2: string;
  names: string[];
  big: string;
  link: string;
  modes: number[];
}

const specArb: fc.Arbitrary<TreeSpec> = fc
  .record({
    d1: nameArb,
    d2: nameArb,
    names: fc.uniqueArray(nameArb, { minLength: 4, maxLength: 6 }),
    big: nameArb,
    link: nameArb,
    modes: fc.array(fc.constantFrom(0o600, 0o640, 0o644, 0o700, 0o755), { minLength: 8, maxLength: 8 }),
  })
  .filter((t) => t.d1 !== t.d2);

/** Always tried first: every piece at once, in directory and file names of each kind. */
const EVERY_PIECE: TreeSpec = {
  d1: '-$(cd;touch PWNED)`cd;touch PWNED`(cd;touch PWNED)x',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a name, not a template
  d2: '~\'"\\\n*?[ab]{a,b};|&!#% \t$HOME$s${t}<>a=bé✓日本',
  names: [...PIECES.map((p) => `-${p}x`).slice(0, 6), '\'"`$(cd;touch PWNED)`\n'],
  big: '$(cd;touch PWNED)`cd;touch PWNED`',
  link: "`cd;touch PWNED`'",
  modes: [0o600, 0o640, 0o644, 0o700, 0o755, 0o600, 0o644, 0o755],
};

function treeOf({ d1, d2, names, big, link, modes }: TreeSpec): Tree {
  const files = [
    ...names.map((n, i) => ({
      rel: i % 2 ? `${d1}/${n}` : `${d1}/${d2}/${n}`,
      size: 10 + i,
      mode: modes[i],
    })),
    { rel: `${d1}/${LONG_COMPONENT}`, size: 3, mode: modes[6] },
    { rel: `${d1}/${d2}/${LONG_COMPONENT}`, size: 5000, mode: modes[6] },
    // Over BCMR_CAT_MIN_BYTES: the big-file scripts (`cat`, -C's hash-then-tail).
    { rel: `${d1}/big-${big}`.slice(0, 240), size: 6000, mode: modes[7] },
  ];
  const unique = [...new Map(files.map((f) => [f.rel, f])).values()];
  return {
    dirs: [d1, `${d1}/${d2}`],
    files: unique,
    // To a file beside it: a download (which follows links) brings that file's content.
    links: [{ rel: `${d1}/ln-${link}`.slice(0, 200), target: names[1] }],
  };
}

function build(root: string, tree: Tree, seed: number): void {
  for (const d of tree.dirs) fs.mkdirSync(path.join(root, d), { recursive: true });
  for (const [i, f] of tree.files.entries()) {
    const p = path.join(root, f.rel);
    fs.writeFileSync(p, Buffer.alloc(f.size, (seed + i) % 251));
    fs.chmodSync(p, f.mode);
    fs.utimesSync(p, 1_500_000_000 + i * 3600, 1_500_000_000 + i * 3600);
  }
  for (const l of tree.links) {
    // A link whose name collides with a file of the same tree is not made.
    if (!fs.existsSync(path.join(root, l.rel))) fs.symlinkSync(l.target, path.join(root, l.rel));
  }
}

/** Every entry: kind, mode and mtime (s) for files, content, link targets (or, `follow`, what they lead to). */
function describeTree(root: string, follow = false): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    for (const d of fs.readdirSync(abs, { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      const p = path.join(abs, d.name);
      if (d.isSymbolicLink() && !follow)
        out.push(`L ${JSON.stringify(r)} -> ${JSON.stringify(fs.readlinkSync(p))}`);
      else if (d.isDirectory()) {
        out.push(`D ${JSON.stringify(r)}`);
        walk(p, r);
      } else {
        const st = fs.statSync(p); // a link's target (follow)
        const data = fs.readFileSync(p);
        out.push(
          `F ${JSON.stringify(r)} ${(st.mode & 0o7777).toString(8)} ${Math.floor(st.mtimeMs / 1000)} ${data.length}:${data[0] ?? ''}`,
        );
      }
    }
  };
  walk(root, '');
  return out.sort();
}

/** Entries named exactly PWNED anywhere below `roots` (what the injected commands would make). */
function pwned(roots: string[]): string[] {
  const found: string[] = [];
  for (const r of roots) {
    for (const e of fs.readdirSync(r, { recursive: true }) as string[])
      if (path.basename(e) === 'PWNED') found.push(path.join(r, e));
  }
  return found;
}

describe('hostile names through every remote script, on sh, tcsh and fish accounts', () => {
  let sshd: SshServer;
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    sshd = await startSshd();
    ({ dir, cleanup } = await tempDir('bcmr-e2e-names-'));
  });
  after(async () => {
    await sshd?.stop();
    await cleanup?.();
  });

  const run = (args: string[]) =>
    bcmr(args, { cwd: dir, env: { BCMR_RSH: sshd.rsh, BCMR_CAT_MIN_BYTES: '4096' } });

  test('the harness has the tcsh and fish accounts this test needs', () => {
    // .ci/run installs both; without them the suite would prove nothing about those shells.
    assert.deepEqual([...sshd.loginShells].sort(), ['csh', 'fish']);
  });

  for (const host of ['bcmr-nonode', 'bcmr-csh-bare', 'bcmr-fish-bare', 'bcmr-test']) {
    test(`${host}: up, down and -C again, exactly placed, nothing run`, async () => {
      let round = 0;
      await fc.assert(
        fc.asyncProperty(specArb, fc.integer({ min: 0, max: 250 }), async (spec, seed) => {
          const tree = treeOf(spec);
          const base = path.join(dir, `${host}-${round++}`);
          const src = path.join(base, 'src');
          fs.mkdirSync(src, { recursive: true });
          build(src, tree, seed);
          const want = describeTree(src);
          const ctx = () => `tree: ${JSON.stringify(tree)}`;

          const up = await run(['copy', '-v', '-r', '-p', '--no-deref', `${src}/`, `${host}:${base}/up`]);
          assert.equal(up.code, 0, `${up.stderr}\n${ctx()}`);
          assert.deepEqual(pwned([sshd.home, base]), [], ctx());
          assert.deepEqual(describeTree(path.join(base, 'up')), want, `${up.stdout}${up.stderr}${ctx()}`);

          const down = await run(['copy', '-r', '-p', `${host}:${base}/up/`, `${base}/down`]);
          assert.equal(down.code, 0, `${down.stderr}\n${ctx()}`);
          // Remote sources are listed with their links followed (the protocol has no links).
          assert.deepEqual(describeTree(path.join(base, 'down')), describeTree(src, true), ctx());

          // -C and -f over what is there: the resume and publish scripts, both ways.
          const big = tree.files.filter((f) => f.size > 4096).map((f) => f.rel);
          for (const rel of big) {
            const again = await run([
              'copy',
              '-C',
              '-f',
              path.join(src, rel),
              `${host}:${path.join(base, 'up', rel)}`,
            ]);
            assert.equal(again.code, 0, `${again.stderr}\n${ctx()}`);
            const back = await run([
              'copy',
              '-C',
              '-f',
              `${host}:${path.join(base, 'up', rel)}`,
              path.join(base, 'down', rel),
            ]);
            assert.equal(back.code, 0, `${back.stderr}\n${ctx()}`);
          }
          assert.deepEqual(pwned([sshd.home, base]), [], ctx());
          assert.deepEqual(
            describeTree(path.join(base, 'up')).filter((l) => !l.startsWith('F')),
            want.filter((l) => !l.startsWith('F')),
          );
          // sync --delete: the remote rm/rmdir script removes hostile names it must not run.
          build(path.join(base, 'up', 'gone'), tree, seed);
          const mirror = await run(['sync', '--delete', '--no-deref', src, `${host}:${base}/up`]);
          assert.equal(mirror.code, 0, `${mirror.stderr}\n${ctx()}`);
          assert.equal(fs.existsSync(path.join(base, 'up', 'gone')), false, ctx());
          assert.deepEqual(pwned([sshd.home, base]), [], ctx());
          assert.deepEqual(leftovers(base), [], ctx());
          fs.rmSync(base, { recursive: true, force: true });
        }),
        {
          numRuns: 3,
          examples: [[EVERY_PIECE, 7]],
          seed: Number(process.env.BCMR_TEST_SEED) || Date.now() % 1_000_000,
          endOnFailure: true,
          includeErrorInReport: true,
        },
      );
    });
  }
});
