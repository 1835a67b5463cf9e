/**
 * The tools a benchmark compares, as command lines. Every tool copies the dataset (a file or a
 * tree) into an existing destination directory, so the copy lands at `dstDir/<basename>` for
 * all of them and one check fits all.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { shellQuote } from '../src/util/shell.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, '../../bin/bcmr.js');

export interface Route {
  /** ssh_config alias for ssh-based tools. */
  alias: string;
  /** `ssh -F config` as one string, and its config path. */
  rsh: string;
  config: string;
  /** Where sshd is reached directly (rclone does not read ssh_config). */
  host: string;
  port: number;
  user: string;
  keyFile: string;
}

export interface Job {
  direction: 'up' | 'down';
  kind: 'file' | 'tree';
  /** The dataset, local for uploads and remote (same path) for downloads. */
  src: string;
  /** Existing destination directory (remote for uploads, local for downloads). */
  dstDir: string;
  route: Route;
}

export interface Tool {
  name: string;
  peer: boolean;
  /** Whether the tool can do this job (e.g. `ssh cat` moves single files only). */
  can?(job: Job): boolean;
  /** False for a ceiling that moves bytes but writes no copy (raw TCP): nothing to check. */
  copies?: false;
  argv(job: Job): string[];
}

const q = shellQuote;
const sh = (cmd: string) => ['sh', '-c', cmd];

/** Reaching the remote another way than the workload's route: another ssh_config alias. */
export interface Via {
  /** ssh_config alias of the same sshd whose sessions see another PATH (test/harness/sshd.ts). */
  alias: string;
  /** What the tool's name says about it, e.g. `bundle`. */
  label: string;
}

export function bcmr(
  n: number | 'auto',
  compress: 'auto' | 'none' = 'auto',
  direct: boolean | 'auto' = false,
  via?: Via,
): Tool {
  const plane = direct === 'auto' ? ' --direct auto' : direct ? ' --direct=direct' : '';
  return {
    name: `bcmr -P ${n}${compress === 'none' ? ' --compress none' : ''}${plane}${via ? ` (${via.label})` : ''}`,
    peer: false,
    argv: (j) => {
      const base = [
        process.execPath,
        BIN,
        'copy',
        '-r',
        '-f',
        '-P',
        String(n),
        '--compress',
        compress,
        ...(direct === 'auto' ? ['--direct', 'auto'] : direct ? ['--direct=direct', '--no-fallback'] : []),
        '--rsh',
        j.route.rsh,
      ];
      const alias = via?.alias ?? j.route.alias;
      return j.direction === 'up'
        ? [...base, j.src, `${alias}:${j.dstDir}`]
        : [...base, `${alias}:${j.src}`, j.dstDir];
    },
  };
}

export const scp: Tool = {
  name: 'scp',
  peer: true,
  argv: (j) => {
    const base = ['scp', '-q', '-r', '-F', j.route.config];
    return j.direction === 'up'
      ? [...base, j.src, `${j.route.alias}:${j.dstDir}`]
      : [...base, `${j.route.alias}:${j.src}`, j.dstDir];
  },
};

export function rsync(compress = false): Tool {
  return {
    name: compress ? 'rsync -az' : 'rsync -a',
    peer: true,
    argv: (j) => {
      const base = ['rsync', compress ? '-az' : '-a', '-e', j.route.rsh];
      return j.direction === 'up'
        ? [...base, j.src, `${j.route.alias}:${j.dstDir}/`]
        : [...base, `${j.route.alias}:${j.src}`, `${j.dstDir}/`];
    },
  };
}

export const rclone: Tool = {
  name: 'rclone (sftp)',
  peer: true,
  argv: (j) => {
    const r = j.route;
    const remote = `:sftp,host=${r.host},port=${r.port},user=${r.user},key_file=${r.keyFile}:`;
    const name = path.basename(j.src);
    const [from, to] =
      j.direction === 'up'
        ? [j.src, `${remote}${j.kind === 'tree' ? path.join(j.dstDir, name) : j.dstDir}`]
        : [`${remote}${j.src}`, j.kind === 'tree' ? path.join(j.dstDir, name) : j.dstDir];
    // Without --sftp-disable-hashcheck rclone runs `md5sum` through a remote shell per file,
    // which measures the remote's shell startup, not the transfer; the bench checks every copy.
    return ['rclone', 'copy', '--config', '/dev/null', '-q', '--sftp-disable-hashcheck', from, to];
  },
};

export const tarSsh: Tool = {
  name: 'tar | ssh | tar',
  peer: true,
  argv: (j) => {
    const parent = path.dirname(j.src);
    const name = path.basename(j.src);
    const ssh = `${j.route.rsh} ${j.route.alias}`;
    return j.direction === 'up'
      ? sh(`tar -C ${q(parent)} -cf - ${q(name)} | ${ssh} ${q(`tar -C ${q(j.dstDir)} -xf -`)}`)
      : sh(`${ssh} ${q(`tar -C ${q(parent)} -cf - ${q(name)}`)} | tar -C ${q(j.dstDir)} -xf -`);
  },
};

/** The single-stream ceiling: the bytes through ssh with nothing else (default cipher). */
export const sshCat: Tool = {
  name: 'ssh cat',
  peer: false,
  can: (j) => j.kind === 'file',
  argv: (j) => {
    const ssh = `${j.route.rsh} ${j.route.alias}`;
    const dst = path.join(j.dstDir, path.basename(j.src));
    return j.direction === 'up'
      ? sh(`cat ${q(j.src)} | ${ssh} ${q(`cat > ${q(dst)}`)}`)
      : sh(`${ssh} ${q(`cat ${q(j.src)}`)} > ${q(dst)}`);
  },
};
