/**
 * Confines every path of a session to the server root (PROTOCOL.md section 14, rule 17.5).
 * Relative paths start at the root; absolute paths are taken as is; NUL bytes and `..`
 * components are refused; the canonical form (symlinks of the longest existing ancestor
 * resolved) must stay inside the root.
 */
import { realpathSync } from 'node:fs';
import { mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { PathError } from '../errors.js';

export class PathGuard {
  private constructor(readonly root: string) {}

  /** Creates the root if missing, then canonicalises it. */
  static async create(root: string): Promise<PathGuard> {
    await mkdir(root, { recursive: true });
    return new PathGuard(await realpath(root));
  }

  contains(canonical: string): boolean {
    return this.root === '/' || canonical === this.root || canonical.startsWith(`${this.root}/`);
  }

  /**
   * The absolute path to operate on. For reads the final component's symlink is resolved
   * (and must land inside the root); for writes it is not, because writes never follow it.
   */
  async resolve(p: string, mode: 'read' | 'write' = 'read'): Promise<string> {
    if (p.includes('\0')) throw new PathError('escape: path contains a NUL byte');
    if (p.split('/').includes('..')) throw new PathError(`escape: path has a '..' component: ${p}`);
    const abs = path.resolve(this.root, p === '' ? '.' : p);
    const canonical = mode === 'read' ? await canonicalise(abs) : await canonicaliseParent(abs);
    if (!this.contains(canonical)) throw new PathError(`escape: path resolves outside the root: ${p}`);
    return canonical;
  }

  /** Re-checks a path right before publishing into it (a symlink may have been swapped in). */
  async recheckParent(abs: string): Promise<void> {
    const canonical = await canonicaliseParent(abs);
    if (!this.contains(canonical)) throw new PathError(`escape: path resolves outside the root: ${abs}`);
  }
}

/**
 * realpath of the longest existing ancestor, joined with the components that do not exist yet.
 * Synchronous on purpose: realpath(3) of cached dentries takes microseconds, far less than a
 * round trip through the libuv pool, and it runs once or twice per file.
 */
async function canonicalise(abs: string): Promise<string> {
  const rest: string[] = [];
  let cur = abs;
  for (;;) {
    try {
      const real = realpathSync.native(cur);
      return rest.length === 0 ? real : path.join(real, ...rest.reverse());
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      const parent = path.dirname(cur);
      if (parent === cur) return abs;
      rest.push(path.basename(cur));
      cur = parent;
    }
  }
}

async function canonicaliseParent(abs: string): Promise<string> {
  if (abs === '/') return abs;
  return path.join(await canonicalise(path.dirname(abs)), path.basename(abs));
}
