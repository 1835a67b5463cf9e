/**
 * Splits a byte stream into decoded messages. No I/O: `push(chunk)` decodes every frame
 * completed by `chunk` and hands each to the sink.
 *
 * Copies: a frame wholly inside one chunk is decoded in place (its Data payload is a view of
 * the chunk); a frame spread over chunks is assembled once into a buffer of exactly its length.
 * The length is checked against the 16 MiB cap before that buffer is allocated.
 * Callers must not reuse a pushed chunk's memory while decoded messages still refer to it.
 */
import { ProtocolError } from '../errors.js';
import { checkFrameLen, decodeFrame } from './codec.js';
import type { Message } from './messages.js';

export class FrameDecoder {
  private readonly head = Buffer.alloc(4);
  private headFill = 0;
  /** Body being assembled across chunks (type byte + body), or null between frames. */
  private body: Buffer | null = null;
  private bodyFill = 0;

  constructor(private readonly sink: (m: Message) => void) {}

  /** True when the stream is between frames, where EOF is a clean end. */
  get atBoundary(): boolean {
    return this.headFill === 0 && this.body === null;
  }

  push(chunk: Uint8Array): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.body !== null) {
        const take = Math.min(this.body.length - this.bodyFill, end - pos);
        this.body.set(chunk.subarray(pos, pos + take), this.bodyFill);
        this.bodyFill += take;
        pos += take;
        if (this.bodyFill === this.body.length) {
          const body = this.body;
          this.body = null;
          this.sink(decodeFrame(body, 0, body.length));
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
        this.sink(decodeFrame(chunk, pos, pos + len));
        pos += len;
      } else {
        this.body = Buffer.allocUnsafe(len);
        this.bodyFill = 0;
      }
    }
  }

  /** Call at end of stream: EOF inside a frame is malformed. */
  end(): void {
    if (!this.atBoundary) throw new ProtocolError('Stream ended inside a frame');
  }
}
