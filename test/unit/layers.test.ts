/**
 * The folders' imports point one way (README, Development: Layout). Every relative import in
 * src/ — static, type-only or dynamic — is checked against the order
 *
 *   cli -> transfer -> client | server -> transport -> protocol, codec, core, util -> errors.ts
 *
 * and, inside client/, pool -> serve | fallback -> ssh -> shell. A folder may use its own
 * modules and anything below it; the bottom tier's folders may use each other; siblings of a
 * tier (client and server; serve and fallback) may not. A new import against the order fails
 * here with the line that made it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src');

/** Rank of a top folder of src/ ('' for files directly in src/, such as errors.ts). */
const TOP: Record<string, number> = {
  cli: 5,
  transfer: 4,
  client: 3,
  server: 3,
  transport: 2,
  protocol: 1,
  codec: 1,
  core: 1,
  util: 1,
  '': 0,
};
/** Rank of a folder inside client/. */
const CLIENT: Record<string, number> = { pool: 4, serve: 3, fallback: 3, ssh: 2, shell: 1 };

interface Place {
  top: string;
  sub: string;
}

function placeOf(file: string): Place {
  const parts = path.relative(SRC, file).split(path.sep);
  if (parts.length === 1) return { top: '', sub: '' };
  return { top: parts[0], sub: parts[0] === 'client' && parts.length > 2 ? parts[1] : '' };
}

/** Why `from` may not import `to`, or null when it may. */
export function against(from: Place, to: Place): string | null {
  if (!(from.top in TOP) || !(to.top in TOP)) return `unknown folder ${from.top || to.top}`;
  if (from.top === to.top) {
    if (from.top !== 'client' || from.sub === to.sub) return null;
    if (!(from.sub in CLIENT) || !(to.sub in CLIENT))
      return `a module directly in client/ (${from.sub || to.sub})`;
    return CLIENT[from.sub] > CLIENT[to.sub] ? null : `client/${from.sub} may not import client/${to.sub}`;
  }
  if (TOP[from.top] === 1 && TOP[to.top] === 1) return null;
  return TOP[from.top] > TOP[to.top] ? null : `${from.top || 'src'}/ may not import ${to.top || 'src'}/`;
}

function* sources(dir: string): Generator<string> {
  for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) yield* sources(p);
    else if (d.name.endsWith('.ts')) yield p;
  }
}

const IMPORT = /(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g;

test('every import in src/ points down the folder order', () => {
  const wrong: string[] = [];
  let seen = 0;
  for (const file of sources(SRC)) {
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      seen++;
      const target = path.resolve(path.dirname(file), m[1]);
      const why = against(placeOf(file), placeOf(target));
      if (why) {
        const line = text.slice(0, m.index).split('\n').length;
        wrong.push(`${path.relative(SRC, file)}:${line} imports ${m[1]}: ${why}`);
      }
    }
  }
  assert.ok(seen > 200, `only ${seen} imports found: is ${SRC} the source tree?`);
  assert.deepEqual(wrong, []);
});

test('the rule itself: down is allowed, up and sideways are not', () => {
  const at = (top: string, sub = ''): Place => ({ top, sub });
  assert.equal(against(at('cli'), at('transfer')), null);
  assert.equal(against(at('protocol'), at('util')), null);
  assert.equal(against(at('client', 'pool'), at('client', 'serve')), null);
  assert.match(String(against(at('protocol'), at('client', 'serve'))), /protocol\/ may not import client\//);
  assert.match(String(against(at('client', 'serve'), at('server'))), /may not import server/);
  assert.match(String(against(at('client', 'fallback'), at('client', 'serve'))), /fallback may not import/);
  assert.match(String(against(at('client', 'shell'), at('client', 'ssh'))), /shell may not import/);
  assert.match(String(against(at('client', 'serve'), at('transfer'))), /client\/ may not import transfer\//);
});
