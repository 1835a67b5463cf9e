/** Makes messages with byte fields comparable by content with deepEqual. */
export function normalise(m: unknown): unknown {
  if (m instanceof Uint8Array) return `bytes:${Buffer.from(m).toString('hex')}`;
  if (Array.isArray(m)) return m.map(normalise);
  if (m !== null && typeof m === 'object') {
    return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, normalise(v)]));
  }
  return m;
}
