/**
 * Benchmark datasets, generated once into a cache directory: a random file, a tree of small
 * random files in nested directories, and compressible real text (documentation and sources
 * found on the system, concatenated). Each dataset's digest (BLAKE3 of the file, or of the
 * sorted list of path + file digest for a tree) is what every copy is checked against.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Blake3Hasher, fileHashHex } from '../src/codec/hash.js';

export interface Dataset {
  name: string;
  path: string;
  kind: 'file' | 'tree';
  bytes: number;
  files: number;
  digest: string;
}

function sh(cmd: string): void {
  execFileSync('sh', ['-c', cmd], { stdio: 'ignore' });
}

export async function randomFile(dir: string, bytes: number): Promise<Dataset> {
  mkdirSync(dir, { recursive: true });
  const p = path.join(dir, `random-${bytes}.bin`);
  if (!existsSync(p) || statSync(p).size !== bytes) sh(`head -c ${bytes} /dev/urandom > '${p}'`);
  return {
    name: `${fmt(bytes)} random file`,
    path: p,
    kind: 'file',
    bytes,
    files: 1,
    digest: await digestOf(p),
  };
}

/** `count` files of `size` random bytes, 10 top directories x 10 subdirectories. */
export async function smallTree(dir: string, count: number, size: number): Promise<Dataset> {
  const p = path.join(dir, `tree-${count}x${size}`);
  if (!existsSync(path.join(dir, `.tree-${count}x${size}.complete`))) {
    rmSync(p, { recursive: true, force: true });
    for (let a = 0; a < 10; a++)
      for (let b = 0; b < 10; b++) mkdirSync(path.join(p, `d${a}`, `e${b}`), { recursive: true });
    sh(
      `cd '${p}' && i=0; while [ $i -lt ${count} ]; do head -c ${size} /dev/urandom > d$((i % 10))/e$((i / 10 % 10))/f$i; i=$((i+1)); done`,
    );
    writeFileSync(path.join(dir, `.tree-${count}x${size}.complete`), '');
  }
  return {
    name: `${count} x ${fmt(size)} files`,
    path: p,
    kind: 'tree',
    bytes: count * size,
    files: count,
    digest: await digestOf(p),
  };
}

/** Real text from the system (docs, headers, sources), cycled to `bytes`. */
export async function textFile(dir: string, bytes: number): Promise<Dataset & { zstdRatio: number }> {
  const p = path.join(dir, `text-${bytes}.txt`);
  if (!existsSync(p) || statSync(p).size !== bytes) {
    const parts: Buffer[] = [];
    let have = 0;
    const roots = [
      '/usr/share/doc',
      '/usr/include',
      '/usr/share/man',
      '/usr/lib/node_modules',
      '/usr/share/perl',
    ];
    const walk = (d: string): void => {
      if (have >= bytes) return;
      let ents: import('node:fs').Dirent[];
      try {
        ents = readdirSync(d, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of ents) {
        if (have >= bytes) return;
        const f = path.join(d, e.name);
        if (e.isDirectory()) walk(f);
        else if (e.isFile() && /\.(h|txt|md|ts|js|html|c|py|pl|pm)$|copyright$|README/.test(e.name)) {
          const b = readFileSync(f);
          parts.push(b);
          have += b.length;
        }
      }
    };
    for (const r of roots) walk(r);
    if (have === 0) throw new Error('no text found on the system for the text dataset');
    let all = Buffer.concat(parts);
    while (all.length < bytes) all = Buffer.concat([all, all]);
    writeFileSync(p, all.subarray(0, bytes));
  }
  return {
    name: `${fmt(bytes)} text`,
    path: p,
    kind: 'file',
    bytes,
    files: 1,
    digest: await digestOf(p),
    zstdRatio: zstdRatio(p),
  };
}

/** original / compressed over 4 MiB blocks at zstd level 3, as bcmr sends them. */
export function zstdRatio(p: string): number {
  const data = readFileSync(p);
  let out = 0;
  for (let i = 0; i < data.length; i += 4 << 20) {
    const block = data.subarray(i, i + (4 << 20));
    out += zlib.zstdCompressSync(block, { params: { [zlib.constants.ZSTD_c_compressionLevel]: 3 } }).length;
  }
  return data.length / out;
}

/** BLAKE3 of a file; of a tree, BLAKE3 over its sorted "path\0digest\n" lines. */
export async function digestOf(p: string): Promise<string> {
  const st = statSync(p);
  if (!st.isDirectory()) return fileHashHex(p);
  const lines: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(path.join(d, e.name), r);
      else lines.push(`${r}\0${await fileHashHex(path.join(d, e.name))}\n`);
    }
  };
  await walk(p, '');
  const h = new Blake3Hasher();
  for (const l of lines.sort()) h.update(l);
  return h.digest('hex');
}

export function warm(p: string): void {
  sh(`find '${p}' -type f -exec cat {} + > /dev/null`);
}

export function fmt(bytes: number): string {
  if (bytes >= 1 << 30) return `${bytes / 2 ** 30} GiB`;
  if (bytes >= 1 << 20) return `${bytes / 2 ** 20} MiB`;
  return `${bytes / 1024} KiB`;
}
