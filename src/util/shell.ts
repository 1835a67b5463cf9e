/**
 * POSIX shell words: quoting arguments for a remote `sh -c` line, and splitting a user's
 * `--rsh "ssh -p 2222 -i key"` into argv the way rsync does (quotes and backslashes honoured).
 */
import { UsageError } from '../errors.js';

/**
 * Single-quotes `s` for a POSIX shell; safe for any byte string without NUL. No backslash ever
 * sits inside single quotes, so the same word also reads right in fish (where `\\` and `\'`
 * inside single quotes are escapes) and csh: a quote is written `'"'"'` rather than `'\''`,
 * and a backslash of `s` itself `'\\'` (outside the quotes, where every shell reads `\\` as one).
 */
export function shellQuote(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/['\\]/g, (c) => (c === "'" ? `'"'"'` : `'\\\\'`))}'`;
}

/** Splits a command line into words; throws UsageError on an unterminated quote. */
export function splitCommand(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1])) word += line[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new UsageError(`Unterminated ${quote} in command: ${line}`);
  if (inWord) words.push(word);
  return words;
}

/** sh text built by `sh`: inserted verbatim into another `sh` template. */
export class ShText {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** A value an `sh` template may hold: quoted words, whole numbers, or sh text built by `sh`. */
export type ShValue = string | number | ShText | readonly (string | ShText)[];

/**
 * The only way names reach a remote shell as code: a template whose every interpolated string
 * is one quoted word (an array: words separated by spaces), whose numbers must be integers, and
 * whose sh fragments must themselves have been built by `sh` (or `shRaw`, for fixed text). A
 * name can therefore never be spliced into a script unquoted, in any builder.
 */
export function sh(strings: TemplateStringsArray, ...values: ShValue[]): ShText {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += shWord(values[i]) + strings[i + 1];
  return new ShText(out);
}

/** Fixed sh text of ours (no names in it), to be spliced into an `sh` template verbatim. */
export function shRaw(text: string): ShText {
  return new ShText(text);
}

function shWord(v: ShValue): string {
  if (v instanceof ShText) return v.text;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new TypeError(`sh: ${v} is not an integer`);
    return String(v);
  }
  if (typeof v === 'string') return shellQuote(v);
  return v.map((w) => (w instanceof ShText ? w.text : shellQuote(w))).join(' ');
}

/** Script lines built by `sh`, one per line. */
export function shLines(lines: readonly ShText[]): ShText {
  return new ShText(lines.map((l) => l.text).join('\n'));
}
