/**
 * Put (with its dedup variant) and PutChunked.
 *
 * A fresh Put (offset 0) is staged in `.NAME.bcmr-tmp-XXXXXX` beside the destination and
 * renamed into place only after Done, when exactly `size` bytes arrived; any failure removes
 * the temp file. After a failure the handler keeps reading the Put's data frames up to Done
 * and only then answers one Error (rule 17.1), so the connection stays in step.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import { decodeBlock } from '../../codec/block.js';
import { Blake3Hasher, digestAndRecycle, takeHasher } from '../../codec/hash.js';
import { ProtocolError } from '../../errors.js';
import { MAX_BLOCK } from '../../protocol/constants.js';
import { type ClientMessage, type DataMessage, isData, type Message } from '../../protocol/messages.js';
import type { FdFile } from '../../util/fd_file.js';
import { PART_REPLACED, publishTemp, tempNameFor } from '../../util/temp_file.js';
import { WriteBatch } from '../../util/write_batch.js';
import { casCapBytes, type StoredBlock } from '../cas.js';
import { Cap, errorLine, hasCap, OpError, type SessionContext } from '../context.js';
import { trackTemp, untrackTemp } from '../live_temps.js';
import {
  CREATE_NEW,
  clip,
  type JailDir,
  openForWrite,
  openOwnForWrite,
  type WriteTarget,
} from '../path_guard.js';

type Of<T extends ClientMessage['type']> = Extract<ClientMessage, { type: T }>;

/** Thrown when the Error has already been sent (dedup refused before its data phase). */
class Answered extends Error {}

/** A failure found after the Put's Done was read: there is nothing left to drain. */
class AfterDone extends OpError {}

export async function handlePut(ctx: SessionContext, m: Of<'Put'>): Promise<void> {
  let target: WriteTarget | null = null;
  let tmp: string | null = null;
  let fh: FdFile | null = null;
  let done = false;
  // Blocks of a dedup Put that crossed the wire and matched their hashes, as they arrive.
  const received: StoredBlock[] = [];
  try {
    // Refused up front (bad path, exists, no space, not a regular file): the Error goes out at
    // once, as the Rust server does, so a pipelining client learns it before streaming the
    // whole file; the Put's data is then drained silently up to its Done (still exactly one
    // Error per failed Put, rule 17.1).
    try {
      if (m.offset > m.size) throw new OpError(`io: offset ${m.offset} beyond size ${m.size}`);
      target = ctx.guard.writeTarget(m.path, true);
      if (m.offset > 0) {
        if (!hasCap(ctx, Cap.PUT_OFFSET)) throw new OpError('io: Put with offset needs PUT_OFFSET');
        const own = openOwnForWrite(ctx.guard, target.dir, target.name, m.path);
        fh = own.fh;
        const cur = fh.stat().size;
        if (cur < m.offset) throw new OpError(`io: offset ${m.offset} beyond current size ${cur}`);
      } else {
        const existing = lstatSync(target.dir.at(target.name), { throwIfNoEntry: false });
        if (existing && !m.overwrite) throw new OpError(`exists: ${clip(m.path)}`);
        if (existing && !existing.isFile()) throw new OpError(`io: not a regular file: ${clip(m.path)}`);
        await checkSpace(target.dir, m.size);
        // Created inside the checked directory, never through a link (O_EXCL | O_NOFOLLOW).
        const tmpName = path.basename(tempNameFor(target.name));
        fh = openForWrite(ctx.guard, target.dir, tmpName, CREATE_NEW, m.path);
        tmp = target.dir.at(tmpName);
        trackTemp(tmp);
      }
    } catch (err) {
      if (err instanceof ProtocolError) throw err;
      ctx.sink.send({ type: 'Error', message: errorLine(err) });
      await ctx.sink.flush();
      await drainPut(ctx);
      throw new Answered(String(err));
    }
    if (m.offset > 0) {
      await receiveInto(ctx, fh, m.offset, m.size - m.offset, null);
      done = true;
      fh.truncate(m.size);
      if (ctx.sync) await fh.sync();
      ctx.sink.send({ type: 'Ok', hash: null });
      return;
    }
    const { dir, name } = target;
    const hasher = takeHasher();
    const first = await ctx.reader.expect('Put');
    let stored = false;
    if (first.type === 'HaveBlocks') {
      stored = await receiveDedup(ctx, fh, m.size, first, hasher, received);
    } else {
      ctx.reader.unread(first);
      await receiveInto(ctx, fh, 0, m.size, hasher);
    }
    done = true;
    if (ctx.sync) await fh.sync();
    fh.close();
    fh = null;
    // Both names go through the same checked directory: a parent swapped meanwhile cannot
    // redirect the rename or the link.
    publishTemp(tmp as string, dir.at(name), m.overwrite, () => new OpError(`exists: ${clip(m.path)}`));
    untrackTemp(tmp as string);
    tmp = null;
    if (ctx.sync) await dir.sync();
    if (stored) await storeFresh(ctx, dir.realOf(name), received);
    ctx.sink.send({ type: 'Ok', hash: digestAndRecycle(hasher) });
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    if (!done && !(err instanceof Answered) && !(err instanceof AfterDone)) await drainPut(ctx);
    if (err instanceof Answered) return;
    throw err;
  } finally {
    fh?.close();
    if (tmp && received.length > 0) await keepReceived(ctx, tmp, received);
    if (tmp) {
      rmQuiet(tmp);
      untrackTemp(tmp);
    }
    target?.dir.close();
  }
}

/**
 * A Put's declared size must be plausible before the server writes a byte for it: no more than
 * the free space of the target filesystem. Dedup turns a few bytes of hashes into `size` bytes
 * written, so without this a short request could fill the disk.
 */
async function checkSpace(dir: JailDir, size: number): Promise<void> {
  if (size <= MAX_BLOCK) return;
  const st = await statfs(dir.at('.'));
  const free = st.bavail * st.bsize;
  if (size > free)
    throw new OpError(`io: no space: ${size} bytes declared, ${free} free on the target filesystem`);
}

function rmQuiet(p: string): void {
  try {
    unlinkSync(p);
  } catch {
    // Already gone.
  }
}

/**
 * Writes the data frames that follow into `fh` from `offset` until Done; exactly `expected`
 * bytes must arrive. Returns the byte count.
 */
async function receiveInto(
  ctx: SessionContext,
  fh: FdFile,
  offset: number,
  expected: number,
  hasher: Blake3Hasher | null,
): Promise<number> {
  let got = 0;
  await WriteBatch.run(
    fh,
    offset,
    async (batch) => {
      for (;;) {
        const msg = await ctx.reader.expect('Put data');
        if (msg.type === 'Done') break;
        if (!isData(msg)) {
          ctx.reader.unread(msg);
          throw new OpError(`proto: unexpected ${msg.type} inside a Put's data`);
        }
        const bytes = blockOf(ctx, msg);
        if (got + bytes.length > expected) {
          throw new OpError(`io: received more than the declared ${expected} bytes`);
        }
        hasher?.update(bytes);
        got += bytes.length;
        await batch.add(bytes);
      }
    },
    release(ctx),
  );
  if (got !== expected) throw new AfterDone(`io: Put ended after ${got} of ${expected} bytes`);
  return got;
}

async function receiveDedup(
  ctx: SessionContext,
  fh: FdFile,
  size: number,
  have: Of<'HaveBlocks'>,
  hasher: Blake3Hasher,
  fresh: StoredBlock[],
): Promise<boolean> {
  const count = have.hashes.length / 32;
  const refuse = (line: string): never => {
    ctx.sink.send({ type: 'Error', message: line });
    throw new Answered(line);
  };
  if (!hasCap(ctx, Cap.DEDUP)) refuse('proto: HaveBlocks without DEDUP');
  if (have.blockSize !== MAX_BLOCK) refuse(`proto: dedup block size must be ${MAX_BLOCK}`);
  if (count !== Math.ceil(size / MAX_BLOCK)) refuse(`proto: ${count} block hashes for a ${size}-byte file`);
  const hexes: string[] = [];
  for (let i = 0; i < count; i++)
    hexes.push(Buffer.from(have.hashes.subarray(i * 32, i * 32 + 32)).toString('hex'));
  // A store we must not use (not ours, a symlink) means no dedup: every block is asked for.
  const cas = await ctx
    .cas()
    .ready()
    .then(
      () => ctx.cas(),
      () => null,
    );
  try {
    await cas?.evict(casCapBytes());
  } catch {
    // Eviction is housekeeping; a failure must not fail the upload.
  }
  const bitmap = new Uint8Array(Math.ceil(count / 8));
  const need: boolean[] = [];
  for (let i = 0; i < count; i++) {
    need[i] = cas === null || !(await cas.has(hexes[i]));
    if (need[i]) bitmap[i >> 3] |= 1 << (i & 7);
  }
  ctx.sink.send({ type: 'MissingBlocks', bitmap });
  await ctx.sink.flush();
  let corrupt: string | null = null;
  // Blocks are written in order from offset 0, gathered and written on the pool while the next
  // pieces arrive; a received block is hashed and written piece by piece, never assembled.
  await WriteBatch.run(
    fh,
    0,
    async (batch) => {
      for (let i = 0; i < count; i++) {
        const len = Math.min(MAX_BLOCK, size - i * MAX_BLOCK);
        if (need[i]) {
          const blockHash = new Blake3Hasher();
          const got = await receiveBlock(
            ctx,
            async (piece) => {
              blockHash.update(piece);
              if (corrupt) return; // the Put fails anyway: only read what was sent
              hasher.update(piece);
              await batch.add(piece);
            },
            len,
          );
          if (got < 0) throw new OpError(`io: dedup block ${i} was marked missing but not sent`);
          if (got !== len || blockHash.digest('hex') !== hexes[i]) {
            throw new OpError(`io: dedup block ${i} does not match its announced hash`);
          }
          fresh.push({ hex: hexes[i], offset: i * MAX_BLOCK, length: len });
          continue;
        }
        const block = cas ? await cas.read(hexes[i]) : null;
        if (block === null || block.length !== len) {
          // Rule 17.3: never write a corrupt or vanished block; the client re-sends without dedup.
          corrupt ??= `io: dedup block ${i} is missing or corrupt in the server's store; resend without dedup`;
        }
        if (corrupt || block === null) continue;
        hasher.update(block);
        await batch.add(block);
      }
    },
    release(ctx),
  );
  const end = await ctx.reader.expect('dedup Done');
  if (end.type !== 'Done') {
    ctx.reader.unread(end);
    throw new OpError(`proto: expected Done after dedup blocks, got ${end.type}`);
  }
  if (corrupt) throw new AfterDone(corrupt);
  return cas !== null;
}

/**
 * A dedup Put that failed after some blocks arrived (most often: the connection was lost)
 * leaves them in the store (`Cas.keepPartial`) instead of deleting them with its temp file, so
 * a plain rerun, without -C, sends only the blocks the server lacks. Housekeeping: a failure
 * here only means the temp file is removed as before.
 */
async function keepReceived(ctx: SessionContext, tmp: string, blocks: StoredBlock[]): Promise<void> {
  try {
    await ctx.cas().keepPartial(tmp, blocks);
    await ctx.cas().evict(casCapBytes());
  } catch {
    // Not kept: the caller removes the temp file.
  }
}

/**
 * After a dedup Put is published: the store refers to its new blocks where they now lie (no
 * second copy of the bytes), then evicts once more besides the eviction PROTOCOL.md asks for
 * at the start, so it rests within its cap (oldest blocks first). Housekeeping only: a failure
 * here never fails the Put.
 */
async function storeFresh(ctx: SessionContext, dest: string, fresh: StoredBlock[]): Promise<void> {
  const cas = ctx.cas();
  await Promise.all(fresh.map((b) => cas.refer(b.hex, dest, b.offset, b.length).catch(() => {})));
  await cas.evict(casCapBytes()).catch(() => {});
}

/**
 * One dedup block as sent, to `onPiece`: a compressed frame decoded whole, or the raw Data
 * pieces the reader split it into, as they come. Returns its length, or -1 when no data frame
 * comes next.
 */
async function receiveBlock(
  ctx: SessionContext,
  onPiece: (piece: Uint8Array) => Promise<void>,
  len: number,
): Promise<number> {
  const first = await ctx.reader.expect('dedup data');
  if (!isData(first)) {
    ctx.reader.unread(first);
    return -1;
  }
  if (first.type === 'DataCompressed') {
    const block = blockOf(ctx, first);
    await onPiece(block);
    return block.length;
  }
  let have = 0;
  for (let m: Message = first; ; ) {
    if (m.type !== 'Data') {
      ctx.reader.unread(m);
      return have;
    }
    await onPiece(m.data);
    have += m.data.length;
    if (have >= len) return have;
    m = await ctx.reader.expect('dedup data');
  }
}

/** PutChunked: exactly `length` bytes at `offset` of a file created if absent, never truncated. */
export async function handlePutChunked(ctx: SessionContext, m: Of<'PutChunked'>): Promise<void> {
  let got = 0;
  let fh: FdFile | null = null;
  let target: WriteTarget | null = null;
  try {
    target = ctx.guard.writeTarget(m.path, true);
    const own = openOwnForWrite(ctx.guard, target.dir, target.name, m.path);
    fh = own.fh;
    // Another user's part file was replaced by an empty one: bytes before this range are gone,
    // so the client must send the whole file again (it says so; a rerun starts fresh).
    if (own.replaced && m.offset > 0)
      throw new OpError(`io: ${clip(m.path)} ${PART_REPLACED}: send from the start`);
    // Pieces gathered and written on the pool while the next ones arrive, as for Put.
    await WriteBatch.run(
      fh,
      m.offset,
      async (batch) => {
        while (got < m.length) {
          const msg = await ctx.reader.expect('PutChunked data');
          if (msg.type === 'Done') throw new AfterDone(`io: range ended after ${got} of ${m.length} bytes`);
          if (!isData(msg)) {
            ctx.reader.unread(msg);
            throw new OpError(`proto: unexpected ${msg.type} inside a PutChunked range`);
          }
          const bytes = blockOf(ctx, msg);
          if (got + bytes.length > m.length) throw new OpError('io: received more than the range length');
          got += bytes.length;
          await batch.add(bytes);
        }
      },
      release(ctx),
    );
    if (ctx.sync) await fh.sync();
    ctx.discardNextDone = true;
    ctx.sink.send({ type: 'Ok', hash: null });
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    // Discard the rest of the range (and a Done) so the next request is read in step.
    if (!(err instanceof AfterDone)) await drainRange(ctx, m.length - got);
    throw err;
  } finally {
    fh?.close();
    target?.dir.close();
  }
}

/**
 * A data frame's bytes. The reader's memory under a compressed payload is given back as soon
 * as it is decompressed; raw pieces go back once written (`release`, given to WriteBatch).
 */
function blockOf(ctx: SessionContext, msg: DataMessage): Uint8Array {
  const bytes = decodeBlock(msg);
  if (msg.type === 'DataCompressed') ctx.reader.release(msg.payload);
  return bytes;
}

function release(ctx: SessionContext): (piece: Uint8Array) => void {
  return (piece) => ctx.reader.release(piece);
}

/** Discards a failed Put's remaining data frames up to and including Done. */
async function drainPut(ctx: SessionContext): Promise<void> {
  for (;;) {
    const msg = await ctx.reader.next();
    if (msg === null || msg.type === 'Done') return;
    if (!isData(msg) && msg.type !== 'HaveBlocks') return ctx.reader.unread(msg); // a request: served next, not swallowed
  }
}

async function drainRange(ctx: SessionContext, left: number): Promise<void> {
  while (left > 0) {
    const msg = await ctx.reader.next();
    if (msg === null || msg.type === 'Done') return;
    if (!isData(msg)) return ctx.reader.unread(msg); // a request: served next, not swallowed
    left -= msg.type === 'Data' ? msg.data.length : msg.originalSize;
  }
  ctx.discardNextDone = true;
}
