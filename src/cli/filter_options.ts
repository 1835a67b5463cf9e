/**
 * The options that choose which entries take part (copy, sync, move, check, remove): `-e
 * REGEX`, rsync-style `--include` / `--exclude-glob` rules kept in command-line order, and
 * `--files-from FILE` (`-` for stdin, `-0` for NUL-separated names). See transfer/path_filter.ts.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { type GlobRule, PathFilter, parseFilesFrom } from '../transfer/path_filter.js';

export interface FilterRaw {
  exclude: string[];
  /** --include and --exclude-glob: the same list, in command-line order. */
  include?: GlobRule[];
  excludeGlob?: GlobRule[];
  filesFrom?: string;
  from0?: boolean;
}

export function withFilterOptions(c: Command, what = 'skip'): Command {
  // Both glob options append to one list (each option's value is that same array), so their
  // order on the command line is kept.
  const rules: GlobRule[] = [];
  const rule = (include: boolean) => (glob: string) => {
    rules.push({ include, glob });
    return rules;
  };
  return c
    .option(
      '-e, --exclude <regex>',
      `${what} paths (relative to each source) matching REGEX; repeatable`,
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option(
      '--include <glob>',
      'rsync-style rule: take part (first matching rule wins); repeatable',
      rule(true),
    )
    .option(
      '--exclude-glob <glob>',
      `rsync-style rule: ${what} (first matching rule wins); repeatable`,
      rule(false),
    )
    .option('--files-from <file>', 'only these paths (relative to the source; - for stdin)')
    .option('-0, --from0', '--files-from names are separated by NUL, not newline');
}

export function pathFilter(raw: FilterRaw): PathFilter {
  const regexes = raw.exclude.map((re) => {
    try {
      return new RegExp(re);
    } catch (err) {
      throw new UsageError(`bad --exclude regex '${re}': ${(err as Error).message}`);
    }
  });
  let listed: string[] | null = null;
  if (raw.filesFrom !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(raw.filesFrom === '-' ? 0 : raw.filesFrom, 'utf8');
    } catch (err) {
      throw new UsageError(`--files-from ${raw.filesFrom}: ${(err as Error).message}`);
    }
    try {
      listed = parseFilesFrom(text, Boolean(raw.from0));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  return new PathFilter(regexes, raw.include ?? raw.excludeGlob ?? [], listed);
}
