/**
 * How a file travels, decided in one place: striped over every connection, through dedup, or
 * whole. The pool, the upload batch and the copy engine's prehash all ask here.
 */

/** Files at least this large are striped when there is more than one connection. */
export const STRIPE_MIN_BYTES = 64 << 20;
/** Fresh uploads at least this large are offered through dedup (PROTOCOL.md section 9's threshold). */
const DEDUP_MIN_BYTES = 16 << 20;

/**
 * Striped: cut into ranges the connections share (stripe.ts). Not for -C files, which continue
 * from their verified prefix instead.
 */
export function stripes(size: number, connections: number, resume = false): boolean {
  return connections > 1 && !resume && size >= STRIPE_MIN_BYTES;
}

/**
 * Through dedup: a fresh (not -C) upload, not striped (PutChunked has no HaveBlocks), large
 * enough, to a server that offers it, unless a retry must send every block.
 */
export function dedups(
  size: number,
  o: { offered: boolean; connections: number; resume?: boolean; noDedup?: boolean },
): boolean {
  return (
    o.offered && !o.noDedup && !o.resume && !stripes(size, o.connections, o.resume) && size >= DEDUP_MIN_BYTES
  );
}
