/**
 * `bcmr completions bash|zsh|fish [--print|--install|--uninstall]`, and the hidden
 * `bcmr __complete CUR [WORDS...]` every script calls on TAB: command names, each command's
 * options (read from the commands themselves, so a new option completes without touching
 * this file), and remote paths: `host:dir/pa<TAB>` lists `dir` on the host with one `ls` over
 * ssh, given up after a few seconds (the protocol's List is recursive: a whole tree for one
 * TAB). Anything else is left to the shell's own file completion (`__files__`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { runRemote } from '../client/ssh/run_remote.js';
import { parseEndpoint } from '../core/endpoint.js';
import { UsageError } from '../errors.js';
import { shellQuote, splitCommand } from '../util/shell.js';

/** A remote listing for completion gives up after this long (a TAB must not hang). */
const REMOTE_MS = 3000;
/** Commands whose paths may be remote. */
const REMOTE_CAPABLE = new Set([
  'copy',
  'cp',
  'move',
  'mv',
  'sync',
  'check',
  'remove',
  'rm',
  'ls',
  'stat',
  'du',
  'hash',
  'deploy',
]);

type Shell = 'bash' | 'zsh' | 'fish';

const SCRIPTS: Record<Shell, string> = {
  bash: `# bcmr completion for bash (bcmr completions bash)
_bcmr() {
  local line="\${COMP_LINE:0:COMP_POINT}"
  local cur="\${line##*[[:space:]]}"
  local IFS=$'\\n' out
  out=($(bcmr __complete "$cur" "\${COMP_WORDS[@]:1:COMP_CWORD-1}" 2>/dev/null))
  if [[ "\${out[0]}" == __files__ ]]; then compopt -o default; COMPREPLY=(); return; fi
  # bash splits words at ':' (COMP_WORDBREAKS): what is before the last one is already there.
  local pre=""
  [[ "$COMP_WORDBREAKS" == *:* && "$cur" == *:* ]] && pre="\${cur%:*}:"
  COMPREPLY=()
  local c
  for c in "\${out[@]}"; do COMPREPLY+=("\${c#"$pre"}"); done
  [[ "$cur" == *:* ]] && compopt -o filenames -o nospace
}
complete -F _bcmr bcmr
`,
  zsh: `#compdef bcmr
# bcmr completion for zsh (bcmr completions zsh)
_bcmr() {
  local cur=\${words[CURRENT]}
  local -a out
  out=("\${(@f)$(bcmr __complete "$cur" "\${(@)words[2,CURRENT-1]}" 2>/dev/null)}")
  if [[ "\${out[1]}" == __files__ ]]; then _files; return; fi
  compadd -S '' -- "\${out[@]}"
}
compdef _bcmr bcmr
`,
  fish: `# bcmr completion for fish (bcmr completions fish)
function __bcmr_complete
  set -l cur (commandline -ct)
  set -l words (commandline -opc)
  set -l out (bcmr __complete "$cur" $words[2..-1] 2>/dev/null)
  if test "$out[1]" = __files__
    __fish_complete_path "$cur"
  else
    printf '%s\\n' $out
  end
end
complete -c bcmr -f -a '(__bcmr_complete)'
`,
};

/** Where --install puts each shell's script (each shell reads it from there on its own). */
function installPath(shell: Shell): string {
  const home = os.homedir();
  const data = process.env.XDG_DATA_HOME || path.join(home, '.local/share');
  const config = process.env.XDG_CONFIG_HOME || path.join(home, '.config');
  if (shell === 'bash') return path.join(data, 'bash-completion/completions/bcmr');
  if (shell === 'zsh') return path.join(home, '.zfunc/_bcmr');
  return path.join(config, 'fish/completions/bcmr.fish');
}

export function addCompletionCommands(program: Command): void {
  program
    .command('completions')
    .description(
      'Shell completion (commands, options, remote paths): print, --install or --uninstall the script',
    )
    .argument('<shell>', 'bash, zsh or fish')
    .option('--print', 'print the script (the default)')
    .option('--install', 'write it where the shell looks for completions')
    .option('--uninstall', 'remove what --install wrote')
    .action((shell: string, o: { install?: boolean; uninstall?: boolean }) => {
      if (!(shell in SCRIPTS)) throw new UsageError(`no completions for '${shell}' (bash, zsh or fish)`);
      const s = shell as Shell;
      const where = installPath(s);
      if (o.install) {
        fs.mkdirSync(path.dirname(where), { recursive: true });
        fs.writeFileSync(where, SCRIPTS[s]);
        const hint =
          s === 'zsh' ? ' (add `fpath=(~/.zfunc $fpath); autoload -U compinit; compinit` to ~/.zshrc)' : '';
        process.stderr.write(`bcmr: wrote ${where}; new ${s} sessions complete bcmr${hint}\n`);
      } else if (o.uninstall) {
        fs.rmSync(where, { force: true });
        process.stderr.write(`bcmr: removed ${where}\n`);
      } else process.stdout.write(SCRIPTS[s]);
    });
}

/**
 * `bcmr __complete CUR [WORDS...]`, run before the command line is parsed (its words are the
 * user's half-typed line, options included): prints the candidates and exits.
 */
export async function runComplete(program: Command, args: readonly string[]): Promise<never> {
  const [cur = '', ...words] = args;
  const out = (await complete(program, cur, words)).map((c) => `${c}\n`).join('');
  // Written, then gone: an ssh still connecting must not hold the shell's TAB.
  return new Promise<never>(() => process.stdout.write(out, () => process.exit(0)));
}

/** Candidates for the word `cur`, given the words before it (after `bcmr`). */
export async function complete(program: Command, cur: string, words: readonly string[]): Promise<string[]> {
  const commands = program.commands.filter((c) => !c.name().startsWith('_'));
  const sub = words.find((w) => !w.startsWith('-'));
  if (sub === undefined) {
    if (cur.startsWith('-')) return optionsOf(program).filter((o) => o.startsWith(cur));
    return commands.flatMap((c) => [c.name(), ...c.aliases()]).filter((n) => n.startsWith(cur));
  }
  const cmd = commands.find((c) => c.name() === sub || c.aliases().includes(sub));
  if (!cmd) return ['__files__'];
  if (cur.startsWith('-')) return [...optionsOf(cmd), ...optionsOf(program)].filter((o) => o.startsWith(cur));
  if (cmd.name() === 'completions') return ['bash', 'zsh', 'fish'].filter((s) => s.startsWith(cur));
  if (REMOTE_CAPABLE.has(sub) && /^[^/:]+:/.test(cur)) return remotePaths(cur, words);
  return ['__files__'];
}

function optionsOf(c: Command): string[] {
  return c.options.filter((o) => !o.hidden).flatMap((o) => [o.long, o.short].filter((f): f is string => !!f));
}

/** `host:dir/pa` -> the entries of dir starting with pa, as `host:dir/name` (directories end in /). */
async function remotePaths(cur: string, words: readonly string[]): Promise<string[]> {
  const end = parseEndpoint(cur);
  if (end.kind !== 'remote') return ['__files__'];
  const host = cur.slice(0, cur.length - end.path.length);
  const cut = end.path.lastIndexOf('/');
  const dir = cut >= 0 ? end.path.slice(0, cut + 1) : '';
  const prefix = end.path.slice(cut + 1);
  const listed = dir === '' ? '.' : dir.startsWith('~/') ? dir.slice(2) || '.' : dir;
  const rshAt = words.lastIndexOf('--rsh');
  const rsh = splitCommand(rshAt >= 0 ? (words[rshAt + 1] ?? 'ssh') : (process.env.BCMR_RSH ?? 'ssh'));
  const timer = new AbortController();
  const t = setTimeout(() => timer.abort(), REMOTE_MS);
  try {
    const r = await Promise.race([
      runRemote({ rsh, idleMs: REMOTE_MS }, end, `ls -1Ap -- ${shellQuote(listed)}`, {
        extra: ['-o', 'BatchMode=yes', '-o', `ConnectTimeout=${Math.ceil(REMOTE_MS / 1000)}`],
      }),
      new Promise<null>((resolve) => timer.signal.addEventListener('abort', () => resolve(null))),
    ]);
    if (r?.code !== 0) return [];
    return r.stdout
      .toString('utf8')
      .split('\n')
      .filter((n) => n !== '' && n.startsWith(prefix) && n !== './' && n !== '../')
      .map((n) => `${host}${dir}${n}`);
  } finally {
    clearTimeout(t);
  }
}
