/** A file-system error in the words `rm`, `cp` and `ls` use (not Node's "ENOENT: ..., open"). */
const WORDS: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  ENOTDIR: 'Not a directory',
  ENOTEMPTY: 'Directory not empty',
  ELOOP: 'Too many levels of symbolic links',
  EBUSY: 'Device or resource busy',
  EROFS: 'Read-only file system',
};

export function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return (e.code && WORDS[e.code]) ?? e.message;
}
