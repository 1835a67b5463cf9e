/**
 * POSIX shell words: quoting arguments for a remote `sh -c` line, and splitting a user's
 * `--rsh "ssh -p 2222 -i key"` into argv the way rsync does (quotes and backslashes honoured).
 */
import { UsageError } from '../errors.js';

/**
 * Single-quotes `s` for a POSIX shell; safe for any byte string without NUL. A quote inside is
 * written `'"'"'` rather than `'\''`: no backslash ever sits inside single quotes, so the same
 * word also reads right in fish (where `\'` inside single quotes is an escape) and csh.
 */
export function shellQuote(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replaceAll("'", `'"'"'`)}'`;
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
