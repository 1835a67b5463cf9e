/**
 * Splits a byte stream into decoded messages. No I/O: `push(chunk)` decodes every frame
 * completed by `chunk` and hands each to the sink.
 *
 * Copies: a frame wholly inside one chunk is decoded in place (its Data payload is a view of
 * the chunk); a frame spread over chunks is assembled once into a buffer of exactly its length.
 * The length is checked against the 16 MiB cap before that buffer is allocated.
 * Callers must not reuse a pushed chunk's memory while decoded messages still refer to it.
 *
 * With `splitData`, a raw Data frame spread over chunks is not assembled: once its header is
 * checked (n <= 4 MiB, len = 5 + n) each chunk's share is handed on at once as a Data message
 * of its own (a view, no copy). Receivers of file bytes see the same bytes in the same order,
 * while they are still in the CPU cache; only receivers that count frames (dedup blocks) must
 * gather pieces back into blocks.
 */
import { ProtocolError, TruncatedStreamError } from '../errors.js';
import { checkFrameLen, decodeFrame } from './codec.js';
import { MAX_BLOCK, MsgType } from './constants.js';
import type { Message } from './messages.js';

export class FrameDecoder {
  private readonly head = Buffer.alloc(4);
  private headFill = 0;
  /** Body being assembled across chunks (type byte + body), or null between frames. */
  private body: Buffer | null = null;
  private bodyFill = 0;
  /** Bytes still to come of a Data frame being passed on piece by piece. */
  private dataLeft = 0;

  constructor(
    /** Gets each message and the bytes of stream it took (the whole frame, or a Data piece). */
    private readonly sink: (m: Message, bytes: number) => void,
    private readonly splitData = false,
  ) {}

  /** True when the stream is between frames, where EOF is a clean end. */
  get atBoundary(): boolean {
    return this.headFill === 0 && this.body === null && this.dataLeft === 0;
  }

  push(chunk: Uint8Array): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.dataLeft > 0) {
        const take = Math.min(this.dataLeft, end - pos);
        this.sink({ type: 'Data', data: chunk.subarray(pos, pos + take) }, take);
        this.dataLeft -= take;
        pos += take;
        continue;
      }
      if (this.body !== null) {
        const take = Math.min(this.body.length - this.bodyFill, end - pos);
        this.body.set(chunk.subarray(pos, pos + take), this.bodyFill);
        this.bodyFill += take;
        pos += take;
        if (this.bodyFill === this.body.length) {
          const body = this.body;
          this.body = null;
          this.sink(decodeFrame(body, 0, body.length), 4 + body.length);
        }
        continue;
      }
      let len: number;
      if (this.headFill === 0 && end - pos >= 4) {
        len = (chunk[pos] | (chunk[pos + 1] << 8) | (chunk[pos + 2] << 16)) + chunk[pos + 3] * 0x1000000;
        pos += 4;
      } else {
        const take = Math.min(4 - this.headFill, end - pos);
        this.head.set(chunk.subarray(pos, pos + take), this.headFill);
        this.headFill += take;
        pos += take;
        if (this.headFill < 4) return;
        this.headFill = 0;
        len = this.head.readUInt32LE(0);
      }
      checkFrameLen(len);
      if (end - pos >= len) {
        // Whole frame in this chunk: decode in place.
        this.sink(decodeFrame(chunk, pos, pos + len), 4 + len);
        pos += len;
      } else if (this.splitData && end - pos >= 5 && chunk[pos] === MsgType.Data) {
        const n =
          (chunk[pos + 1] | (chunk[pos + 2] << 8) | (chunk[pos + 3] << 16)) + chunk[pos + 4] * 0x1000000;
        if (n > MAX_BLOCK) throw new ProtocolError(`Data block of ${n} bytes exceeds 4 MiB`);
        if (len !== 5 + n)
          throw new ProtocolError(`Data frame length ${len} does not match its ${n} data bytes`);
        pos += 5;
        this.dataLeft = n;
      } else {
        this.body = Buffer.allocUnsafe(len);
        this.bodyFill = 0;
      }
    }
  }

  /**
   * Call at end of stream: EOF inside a frame is malformed, and also exactly what a cut
   * network looks like (a client may try again on a new connection: see TruncatedStreamError).
   */
  end(): void {
    if (!this.atBoundary) throw new TruncatedStreamError('Stream ended inside a frame');
  }
}
