/**
 * Which entries below a source take part: `-e REGEX` (any match leaves it out), rsync-style
 * glob rules (`--include` / `--exclude-glob`, in command-line order, first match wins) and
 * `--files-from` (only the listed paths, and the directories leading to them). A directory
 * left out is left out with everything below it, as in rsync: `--include '*.txt'
 * --exclude-glob '*'` also needs an include of directories (a star and a trailing slash) to
 * look inside them, as rsync's does.
 *
 * Globs as rsync reads them: `*` stays within one component, `**` crosses `/`, `?` and
 * `[...]` as usual; a trailing `/` matches only directories; a leading `/` anchors the pattern
 * at the source's root; any other pattern matches at any depth (`*.o` a name anywhere,
 * `sub/*.o` those in any directory named sub). Dot files are matched like others.
 */
import picomatch from 'picomatch';

export interface GlobRule {
  include: boolean;
  glob: string;
}

interface CompiledRule {
  include: boolean;
  dirOnly: boolean;
  test: (rel: string) => boolean;
}

export class PathFilter {
  /** Keeps everything. */
  static readonly none = new PathFilter([], [], null);

  private readonly rules: CompiledRule[];
  /** --files-from: the listed paths; and every directory on the way to one. */
  private readonly listed: Set<string> | null;
  private readonly leading: Set<string> | null;

  constructor(
    private readonly regexes: readonly RegExp[],
    globs: readonly GlobRule[],
    filesFrom: readonly string[] | null,
  ) {
    this.rules = globs.map(compile);
    this.listed = filesFrom ? new Set(filesFrom) : null;
    this.leading = filesFrom ? new Set(filesFrom.flatMap(ancestors)) : null;
  }

  /** True when nothing is ever left out. */
  get empty(): boolean {
    return this.regexes.length === 0 && this.rules.length === 0 && this.listed === null;
  }

  /** Whether `rel` (relative to its source, `/`-separated, '' for the source itself) is left out. */
  excludes(rel: string, isDir: boolean): boolean {
    if (rel === '') return false;
    if (this.regexes.some((re) => re.test(rel))) return true;
    for (const r of this.rules) {
      if (r.dirOnly && !isDir) continue;
      if (r.test(rel)) return !r.include;
    }
    if (this.listed && this.leading) {
      if (this.listed.has(rel) || ancestors(rel).some((a) => this.listed?.has(a))) return false;
      return !(isDir && this.leading.has(rel));
    }
    return false;
  }
}

function compile(rule: GlobRule): CompiledRule {
  let g = rule.glob;
  const dirOnly = g.endsWith('/');
  g = g.replace(/\/+$/, '');
  const anchored = g.startsWith('/');
  g = anchored ? g.replace(/^\/+/, '') : `**/${g}`;
  return {
    include: rule.include,
    dirOnly,
    test: picomatch(g.split('/').map(rsyncStars).join('/'), { dot: true }),
  };
}

/**
 * rsync's `**` crosses `/` even inside a component (`a/**.o` matches a/b/c.o); picomatch's
 * does only as a whole component, so such a component becomes "here, or deeper".
 */
function rsyncStars(segment: string): string {
  if (segment === '**' || !segment.includes('**')) return segment;
  return `{${segment.replaceAll('**', '*')},${segment.replace('**', '*/**/*')}}`;
}

/** 'a/b/c' -> ['a', 'a/b']. */
function ancestors(rel: string): string[] {
  const parts = rel.split('/');
  return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join('/'));
}

/**
 * A --files-from list: one path per line (or per NUL with -0), relative to the source; `./`
 * and trailing slashes dropped, blank lines and `#` comments skipped (not with -0), `..`
 * refused.
 */
export function parseFilesFrom(text: string, nul: boolean): string[] {
  const out: string[] = [];
  for (const raw of text.split(nul ? '\0' : /\r?\n/)) {
    if (!nul && (raw.trim() === '' || raw.startsWith('#'))) continue;
    if (raw === '') continue;
    const p = raw
      .replace(/^(\.\/)+/, '')
      .replace(/^\/+/, '')
      .replace(/\/+$/, '');
    if (p.split('/').includes('..')) throw new Error(`--files-from: '..' is not allowed: ${raw}`);
    if (p !== '' && p !== '.') out.push(p);
  }
  return out;
}
