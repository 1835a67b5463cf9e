/**
 * Wire constants of bcmr protocol version 2 (PROTOCOL.md sections 3, 4, 5 and 16).
 * Byte values are the Rust bcmr's: 0x01-0x0f travel client -> server, 0x81-0x8c server -> client.
 */

export const PROTOCOL_VERSION = 2;

/** Largest `len` of a frame (type byte + body); bigger frames are rejected before allocation. */
export const MAX_FRAME_LEN = 16 * 1024 * 1024;
/** Largest content block: Data n, DataCompressed original_size, read chunk, dedup block. */
export const MAX_BLOCK = 4 * 1024 * 1024;
/** Largest HaveBlocks / ListResponse count. */
export const MAX_COUNT = 1_048_576;
/** zstd level used for every compressed block. */
export const ZSTD_LEVEL = 3;

export const MsgType = {
  Hello: 0x01,
  List: 0x02,
  Stat: 0x03,
  Hash: 0x04,
  Get: 0x05,
  Put: 0x06,
  Mkdir: 0x07,
  Resume: 0x08,
  Done: 0x09,
  HaveBlocks: 0x0a,
  OpenDirectChannel: 0x0b,
  AuthHello: 0x0c,
  PutChunked: 0x0d,
  GetChunked: 0x0e,
  Truncate: 0x0f,
  Welcome: 0x81,
  Ok: 0x82,
  Error: 0x83,
  Data: 0x84,
  StatResponse: 0x85,
  HashResponse: 0x86,
  ListResponse: 0x87,
  ResumeResponse: 0x88,
  DataCompressed: 0x89,
  MissingBlocks: 0x8a,
  DirectChannelReady: 0x8b,
  AuthChallenge: 0x8c,
} as const;

export type MsgTypeName = keyof typeof MsgType;

export const Cap = {
  LZ4: 0x01,
  ZSTD: 0x02,
  DEDUP: 0x04,
  FAST: 0x08,
  SYNC: 0x10,
  DIRECT_TCP: 0x20,
  AEAD: 0x40,
  PUT_OFFSET: 0x80,
} as const;

/** Compression algorithm byte of DataCompressed. */
export const Algo = {
  LZ4: 1,
  ZSTD: 2,
} as const;

export type AlgoId = (typeof Algo)[keyof typeof Algo];
