/**
 * shellQuote's word must read back as exactly its string in every login shell a remote may
 * have (sh, tcsh, fish), alone and nested inside an `sh -c` line quoted again, which is how a
 * one-line command reaches a remote through the user's login shell. Strings are generated
 * (fast-check, seed printed on failure) from the characters shells treat specially.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { shellQuote } from '../../src/util/shell.js';
import { cannotRun } from '../helpers/cannot_run.js';

/** The shell's path, or null when this machine lacks it. */
function which(name: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

const SPECIAL = [...'\\\'"$`!;&|<>(){}[]*?~#= \t\nab%^é日'];
const wordArb = fc.array(fc.constantFrom(...SPECIAL), { maxLength: 12 }).map((a) => a.join(''));

/** What `shell -c LINE` prints. */
const printed = (shell: string, line: string) =>
  execFileSync(shell, ['-c', line], { encoding: 'utf8', env: { ...process.env, HOME: '/nonexistent' } });

describe('shellQuote reads back exactly in every login shell', () => {
  const shells = { sh: which('sh'), tcsh: which('tcsh'), fish: which('fish') };
  const missing = Object.entries(shells)
    .filter(([, p]) => !p)
    .map(([n]) => n);
  const skip = cannotRun(
    missing.length > 0 && `shell_quote: no ${missing.join(', ')} here (apt install tcsh fish)`,
  );

  for (const [name, shell] of Object.entries(shells)) {
    test(`${name}: a word alone, and inside an sh -c line quoted again`, { skip }, () => {
      // csh cannot hold a newline in a quoted word, and reads `!` as history even there:
      // bcmr never hands csh such a line (it sends those scripts on stdin to sh instead).
      const arb = name === 'tcsh' ? wordArb.filter((w) => !/[\n!]/.test(w)) : wordArb;
      fc.assert(
        fc.property(arb, (word) => {
          assert.equal(printed(shell as string, `printf %s ${shellQuote(word)}`), word);
          const inner = `printf %s ${shellQuote(word)}`;
          assert.equal(printed(shell as string, `sh -c ${shellQuote(inner)}`), word);
        }),
        { numRuns: 40, seed: Number(process.env.BCMR_TEST_SEED) || Date.now() % 1_000_000 },
      );
    });
  }

  test('the words bcmr once got wrong in fish', { skip }, () => {
    for (const word of ['big-\\\\$HOME0zy', "a\\'; touch PWNED; '", 'x\\']) {
      assert.equal(printed(shells.fish as string, `printf %s ${shellQuote(word)}`), word);
    }
  });
});
