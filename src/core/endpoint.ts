/**
 * Command-line locations: `path` (local), `[user@]host:path`, `host:` (the remote home),
 * `[user@][v6addr]:path`. As with scp, a colon after the first slash does not make a path
 * remote, and `./a:b` or `/a:b` stay local.
 */

export interface LocalEndpoint {
  kind: 'local';
  path: string;
}

export interface RemoteEndpoint {
  kind: 'remote';
  user: string | null;
  host: string;
  /** As typed after the colon; '' means the remote home. */
  path: string;
}

export type Endpoint = LocalEndpoint | RemoteEndpoint;

export function parseEndpoint(arg: string): Endpoint {
  const bracket = /^(?:([^@/:]+)@)?\[([^\]/]+)\]:(.*)$/s.exec(arg);
  if (bracket) return { kind: 'remote', user: bracket[1] ?? null, host: bracket[2], path: bracket[3] };
  const colon = arg.indexOf(':');
  const slash = arg.indexOf('/');
  if (colon <= 0 || (slash >= 0 && slash < colon)) return { kind: 'local', path: arg };
  const hostPart = arg.slice(0, colon);
  const at = hostPart.lastIndexOf('@');
  const user = at >= 0 ? hostPart.slice(0, at) : null;
  const host = at >= 0 ? hostPart.slice(at + 1) : hostPart;
  if (host === '' || user === '') return { kind: 'local', path: arg };
  return { kind: 'remote', user, host, path: arg.slice(colon + 1) };
}

/** `user@host` for messages and for grouping sources by connection. */
export function hostLabel(e: RemoteEndpoint): string {
  const host = e.host.includes(':') ? `[${e.host}]` : e.host;
  return e.user ? `${e.user}@${host}` : host;
}

export function describeEndpoint(e: Endpoint): string {
  return e.kind === 'local' ? e.path : `${hostLabel(e)}:${e.path}`;
}
