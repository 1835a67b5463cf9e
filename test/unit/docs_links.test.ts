/** Every link from the README and docs/ to a file of this repository leads to one that exists. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

test('README and docs/ link only to files that exist', () => {
  const pages = ['README.md', ...fs.readdirSync(path.join(REPO, 'docs')).map((f) => `docs/${f}`)];
  const broken: string[] = [];
  let checked = 0;
  for (const page of pages) {
    const text = fs.readFileSync(path.join(REPO, page), 'utf8');
    for (const m of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
      const target = m[1];
      if (/^[a-z]+:/.test(target)) continue; // a web address
      const abs = path.resolve(REPO, path.dirname(page), target);
      if (!abs.startsWith(`${REPO}/`)) continue; // outside the repository (../shared)
      checked++;
      if (!fs.existsSync(abs)) broken.push(`${page}: ${target}`);
    }
  }
  assert.ok(checked >= 10, `only ${checked} links checked`);
  assert.deepEqual(broken, []);
});
