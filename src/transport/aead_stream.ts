/**
 * The direct plane's record layer as two stream transforms (PROTOCOL.md section 12): the
 * session code above them reads and writes plain frames exactly as over ssh.
 *
 * - `RecordSealer` takes the plain frame bytes a FrameSink writes (cut anywhere), finds the
 *   frame boundaries from their length prefixes and seals each frame into one record. GCM is a
 *   stream mode, so ciphertext goes out as the plaintext comes in; only the tag waits for the
 *   frame's end.
 * - `RecordOpener` takes records and releases a record's plaintext only after its tag verified:
 *   nothing unauthenticated ever reaches the protocol decoder.
 *
 * The first `plainFrames` frames in each direction travel unsealed (Hello / Welcome). The
 * counter of each direction starts at 0, counts every record and is never reset, so a nonce
 * never repeats under a session key (and every session has a fresh key, rule 17.6).
 */
import { type CipherGCM, createCipheriv, createDecipheriv, type DecipherGCM } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AeadError, ProtocolError, TruncatedStreamError } from '../errors.js';
import { type DirectionId, recordNonce, TAG_BYTES } from '../protocol/aead.js';
import { MAX_FRAME_LEN } from '../protocol/constants.js';

/**
 * Bytes each side of a record stream holds before it pushes back: 1 MiB (4 MiB held 16 MiB per
 * direct connection for no throughput gain; issue 27, peak RSS).
 */
const BUFFER_BYTES = 1 << 20;
/** Ciphertext decrypted per call at least (see RecordOpener.decrypt). */
const STAGE_BYTES = 256 * 1024;
/** Outgoing pieces up to this size are gathered into one push (fewer socket writes). */
const GATHER_MAX = 64 * 1024;

/** Collects output pieces: small ones are joined, large ones pass by reference. */
class Gather {
  private small: Buffer[] = [];
  private smallBytes = 0;
  constructor(private readonly push: (b: Buffer) => void) {}

  add(b: Buffer): void {
    if (b.length === 0) return;
    if (b.length > GATHER_MAX) {
      this.flush();
      this.push(b);
      return;
    }
    this.small.push(b);
    this.smallBytes += b.length;
    if (this.smallBytes >= GATHER_MAX) this.flush();
  }

  flush(): void {
    if (this.small.length === 0) return;
    this.push(this.small.length === 1 ? this.small[0] : Buffer.concat(this.small, this.smallBytes));
    this.small = [];
    this.smallBytes = 0;
  }
}

/** Frame-boundary tracking shared by both directions: a 4-byte length, then `len` bytes. */
class FrameCursor {
  private readonly header = Buffer.alloc(4);
  private headerHave = 0;
  /** Bytes of the current frame body still to come; -1 while reading a header. */
  left = -1;

  /**
   * Consumes header bytes from `chunk` at `at`; returns the new position. When the header is
   * complete, `left` is the frame's body length and `headerBytes` returns the header.
   */
  readHeader(chunk: Uint8Array, at: number, max: number): number {
    const take = Math.min(4 - this.headerHave, chunk.length - at);
    this.header.set(chunk.subarray(at, at + take), this.headerHave);
    this.headerHave += take;
    if (this.headerHave === 4) {
      const len = this.header.readUInt32LE(0);
      if (len === 0 || len > max) throw new ProtocolError(`frame length ${len} out of range`);
      this.left = len;
      this.headerHave = 0;
    }
    return at + take;
  }

  headerBytes(): Buffer {
    return Buffer.from(this.header);
  }

  get inHeader(): boolean {
    return this.left < 0;
  }

  get midFrame(): boolean {
    return this.left >= 0 || this.headerHave > 0;
  }
}

/**
 * What both directions share: the frame cursor, the record counter, the loop over an input
 * chunk (each `step` consumes some of it and adds output to a Gather) and the end-of-stream
 * check. Any failure fails the stream as a ProtocolError (AeadError for a failed tag).
 */
abstract class RecordStream extends Transform {
  protected readonly cursor = new FrameCursor();
  protected counter = 0;

  constructor(
    protected readonly key: Uint8Array,
    protected readonly direction: DirectionId,
    /** Frames still to pass unsealed (Hello / Welcome). */
    protected plainFrames: number,
    options: ConstructorParameters<typeof Transform>[0],
    private readonly cutMessage: string,
  ) {
    super(options);
  }

  /** Consumes bytes of `chunk` from `at`; returns where it stopped. */
  protected abstract step(chunk: Buffer, at: number, out: Gather): number;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const out = new Gather((b) => this.push(b));
    try {
      for (let at = 0; at < chunk.length; ) at = this.step(chunk, at, out);
      out.flush();
      done();
    } catch (err) {
      done(err instanceof ProtocolError ? err : new ProtocolError((err as Error).message));
    }
  }

  override _flush(done: TransformCallback): void {
    done(this.cursor.midFrame ? new TruncatedStreamError(this.cutMessage) : null);
  }

  protected nonce(): Buffer {
    return recordNonce(this.direction, this.counter++);
  }
}

export class RecordSealer extends RecordStream {
  private cipher: CipherGCM | null = null;

  constructor(key: Uint8Array, direction: DirectionId, plainFrames: number) {
    // Room for a whole 4 MiB block on each side: with the 16 KiB defaults, writer, sealer and
    // socket take turns instead of overlapping.
    super(
      key,
      direction,
      plainFrames,
      { writableHighWaterMark: BUFFER_BYTES, readableHighWaterMark: BUFFER_BYTES },
      'stream ended inside a frame',
    );
  }

  protected step(chunk: Buffer, at: number, out: Gather): number {
    if (this.cursor.inHeader) {
      // A sealed frame (with its own 4-byte length) must fit a record of 16 MiB + 16.
      const next = this.cursor.readHeader(
        chunk,
        at,
        this.plainFrames > 0 ? MAX_FRAME_LEN : MAX_FRAME_LEN - 4,
      );
      if (this.cursor.inHeader) return next;
      const header = this.cursor.headerBytes();
      if (this.plainFrames > 0) out.add(header);
      else {
        this.cipher = createCipheriv('aes-256-gcm', this.key, this.nonce());
        const n = Buffer.allocUnsafe(4);
        n.writeUInt32LE(4 + this.cursor.left + TAG_BYTES, 0);
        out.add(n);
        out.add(this.cipher.update(header));
      }
      return next;
    }
    const take = Math.min(this.cursor.left, chunk.length - at);
    const piece = chunk.subarray(at, at + take);
    this.cursor.left -= take;
    // Plain frames are copied: the writer may reuse its buffer once we return.
    if (!this.cipher) out.add(Buffer.from(piece));
    // Encrypted in slices: outputs of this size come from the allocator's reused memory,
    // whereas a fresh 4 MiB buffer per block costs page faults.
    else
      for (let i = 0; i < piece.length; i += STAGE_BYTES)
        out.add(this.cipher.update(piece.subarray(i, i + STAGE_BYTES)));
    if (this.cursor.left === 0) this.endFrame(out);
    return at + take;
  }

  private endFrame(out: Gather): void {
    this.cursor.left = -1;
    if (this.cipher) {
      out.add(this.cipher.final());
      out.add(this.cipher.getAuthTag());
      this.cipher = null;
    } else {
      this.plainFrames--;
    }
  }
}

export class RecordOpener extends RecordStream {
  private decipher: DecipherGCM | null = null;
  private plain: Buffer[] = [];
  private readonly tag = Buffer.alloc(TAG_BYTES);
  private tagHave = 0;
  private readonly stage = Buffer.allocUnsafe(STAGE_BYTES);
  private staged = 0;

  constructor(key: Uint8Array, direction: DirectionId, plainFrames: number) {
    // Object mode on the readable side: each verified piece is handed on as it is. In byte
    // mode the consumer's read() would concatenate whatever is buffered: a copy per read.
    // A cut inside a record is truncation; a cut at a record boundary is judged by the session
    // (a reply still pending is an error there, rule 17.6).
    super(
      key,
      direction,
      plainFrames,
      {
        readableObjectMode: true,
        readableHighWaterMark: 8,
        writableHighWaterMark: BUFFER_BYTES,
      } /* 8 pieces of at most 256 KiB */,
      'direct connection cut inside a record',
    );
  }

  protected step(chunk: Buffer, at: number, out: Gather): number {
    if (this.cursor.inHeader) {
      const sealed = this.plainFrames === 0;
      // Records: n = ciphertext + tag, at most 16 MiB + 16 (PROTOCOL.md section 16).
      const next = this.cursor.readHeader(chunk, at, sealed ? MAX_FRAME_LEN + TAG_BYTES : MAX_FRAME_LEN);
      if (this.cursor.inHeader) return next;
      if (!sealed) out.add(this.cursor.headerBytes());
      else {
        if (this.cursor.left < TAG_BYTES + 5) {
          throw new ProtocolError(`AEAD record length ${this.cursor.left} out of range`);
        }
        this.decipher = createDecipheriv('aes-256-gcm', this.key, this.nonce());
        this.tagHave = 0;
      }
      return next;
    }
    if (!this.decipher) {
      const take = Math.min(this.cursor.left, chunk.length - at);
      out.add(Buffer.from(chunk.subarray(at, at + take)));
      this.cursor.left -= take;
      if (this.cursor.left === 0) {
        this.cursor.left = -1;
        this.plainFrames--;
      }
      return at + take;
    }
    // Ciphertext first, then the 16-byte tag (which may straddle chunks).
    const cipherLeft = this.cursor.left - (TAG_BYTES - this.tagHave);
    if (cipherLeft > 0) {
      const take = Math.min(cipherLeft, chunk.length - at);
      this.decrypt(chunk.subarray(at, at + take), take === cipherLeft);
      this.cursor.left -= take;
      return at + take;
    }
    const take = Math.min(TAG_BYTES - this.tagHave, chunk.length - at);
    this.tag.set(chunk.subarray(at, at + take), this.tagHave);
    this.tagHave += take;
    this.cursor.left -= take;
    if (this.tagHave === TAG_BYTES) this.endRecord(out);
    return at + take;
  }

  /**
   * Socket reads are small (64 KiB): decrypting each alone costs a native call and a fresh
   * output buffer per read. Ciphertext is staged up to STAGE_BYTES (or the record's end) and
   * decrypted in one call; the staging buffer is reused at once (update copies out).
   */
  private decrypt(piece: Uint8Array, recordEnd: boolean): void {
    const d = this.decipher as DecipherGCM;
    if (this.staged === 0 && (piece.length >= STAGE_BYTES || recordEnd)) {
      this.plain.push(d.update(piece));
      return;
    }
    let at = 0;
    while (at < piece.length) {
      const n = Math.min(STAGE_BYTES - this.staged, piece.length - at);
      this.stage.set(piece.subarray(at, at + n), this.staged);
      this.staged += n;
      at += n;
      if (this.staged === STAGE_BYTES) this.flushStage();
    }
    if (recordEnd) this.flushStage();
  }

  private flushStage(): void {
    if (this.staged === 0) return;
    this.plain.push((this.decipher as DecipherGCM).update(this.stage.subarray(0, this.staged)));
    this.staged = 0;
  }

  private endRecord(out: Gather): void {
    const d = this.decipher as DecipherGCM;
    d.setAuthTag(this.tag);
    let last: Buffer;
    try {
      last = d.final();
    } catch {
      throw new AeadError('AEAD record failed authentication (data corrupted or tampered with)');
    }
    if (last.length > 0) this.plain.push(last);
    // The plaintext must be exactly one frame: its own length prefix says the same size.
    const head = this.plain[0]?.length >= 4 ? this.plain[0] : Buffer.concat(this.plain);
    const size = this.plain.reduce((n, p) => n + p.length, 0);
    if (head.length < 4 || head.readUInt32LE(0) !== size - 4) {
      throw new ProtocolError('AEAD record does not hold exactly one frame');
    }
    // Only now is the record's plaintext released.
    for (const p of this.plain) out.add(p);
    this.plain = [];
    this.decipher = null;
    this.cursor.left = -1;
  }
}
